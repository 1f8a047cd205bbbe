-- Validates one file's raw rows (the query filled in below) into `staged`: typed
-- fields plus the first failing reason, the derived key for rows without
-- one, and the raw text kept only for rows that will be quarantined.
-- {{quantity_value}} and {{ts_value}} type the quantity and ts: from their
-- texts (sm_decimal, sm_timestamp), or columns a typed reader already gave
-- exactly (ledger/fastpath.py; a typed ts has no text, hence `t IS NULL`
-- in the missing test, which changes nothing for a text: empty text, no t).
INSERT INTO staged
WITH src AS ({{rows}}),
-- No join anywhere (nor in the readers): rows are numbered from the order
-- they are staged in, which DuckDB keeps only through single-source
-- SELECT/WHERE queries (batch._number_rows).
typed AS (
    SELECT *,
        {{quantity_value}} AS q,
        {{ts_value}} AS t,
        coalesce(sm_allows_negative(metric), false) AS allow_negative
    FROM src
),
checked AS (
    SELECT *,
        CASE
            WHEN parse_error IS NOT NULL THEN parse_error
            WHEN coalesce(tenant_id, '') = '' OR coalesce(metric, '') = '' OR coalesce(customer_ref, '') = ''
                 OR (coalesce(quantity, '') = '' AND quantity_type IS DISTINCT FROM 'number')
                 OR (coalesce(ts, '') = '' AND t IS NULL) THEN 'missing_field'
            WHEN tenant_id_type <> 'string' OR metric_type <> 'string' OR customer_ref_type <> 'string'
                 OR ts_type <> 'string' OR quantity_type NOT IN ('string', 'number')
                 OR coalesce(idempotency_key_type, 'string') NOT IN ('string', 'null')
                 OR coalesce(resource_id_type, 'string') NOT IN ('string', 'null')
                 OR coalesce(meta_type, 'object') NOT IN ('object', 'null') THEN 'invalid_type'
            -- strlen (bytes, no scan) bounds length (characters) from above
            WHEN (strlen(tenant_id) > 128 AND length(tenant_id) > 128) OR (strlen(metric) > 128 AND length(metric) > 128)
                 OR (strlen(customer_ref) > 255 AND length(customer_ref) > 255)
                 OR (strlen(idempotency_key) > 255 AND length(idempotency_key) > 255)
                 OR (strlen(resource_id) > 255 AND length(resource_id) > 255) THEN 'field_too_long'
            WHEN q IS NULL THEN 'invalid_quantity'
            WHEN q < 0 AND NOT allow_negative THEN 'negative_quantity'
            WHEN t IS NULL THEN 'invalid_timestamp'
            WHEN t > getvariable('sm_max_ts') THEN 'future_timestamp'
            WHEN t < getvariable('sm_min_ts') THEN 'timestamp_out_of_range'
        END AS reason
    FROM typed
),
keyed AS (
    SELECT *,
        CASE
            WHEN reason IS NOT NULL THEN nullif(idempotency_key, '')
            WHEN coalesce(idempotency_key, '') <> '' THEN idempotency_key
            ELSE sm_derived_key(tenant_id, metric, customer_ref, nullif(resource_id, ''), t, q)
        END AS final_key
    FROM checked
)
SELECT
    {{file_seq}} AS file_seq,
    row_number,
    tenant_id, metric, customer_ref,
    nullif(resource_id, '') AS resource_id,
    q AS quantity,
    t AS ts,
    final_key AS idempotency_key,
    CASE WHEN reason IS NULL THEN sm_key_hash(tenant_id, final_key) END AS key_hash,
    coalesce(idempotency_key, '') = '' AS key_derived,
    CASE WHEN meta_type = 'object' THEN meta END AS meta,
    reason,
    CASE reason
        WHEN 'invalid_json' THEN 'line is not a JSON object'
        WHEN 'malformed_row' THEN 'row has more cells than the header'
        WHEN 'missing_field' THEN 'required field empty or absent: ' || concat_ws(', ',
            CASE WHEN coalesce(tenant_id, '') = '' THEN 'tenantId' END,
            CASE WHEN coalesce(metric, '') = '' THEN 'metric' END,
            CASE WHEN coalesce(customer_ref, '') = '' THEN 'customerRef' END,
            CASE WHEN coalesce(quantity, '') = '' AND quantity_type IS DISTINCT FROM 'number' THEN 'quantity' END,
            CASE WHEN coalesce(ts, '') = '' AND t IS NULL THEN 'ts' END)
        WHEN 'invalid_type' THEN 'a field has the wrong JSON type (strings for ids and ts, number or string for quantity, object for meta)'
        WHEN 'field_too_long' THEN 'tenantId/metric at most 128 chars, customerRef/idempotencyKey/resourceId at most 255'
        WHEN 'invalid_quantity' THEN CASE WHEN quantity IS NULL
            THEN 'quantity is a JSON number that cannot be read exactly (out of range, or ambiguous in the line); send it as a string'
            ELSE 'quantity ' || left(quantity, 64) || ' is not a finite decimal with at most 29 integer and 9 fractional digits' END
        WHEN 'negative_quantity' THEN 'metric ' || metric || ' does not allow negative quantities'
        WHEN 'invalid_timestamp' THEN 'ts ' || left(ts, 64) || ' is not an RFC 3339 timestamp'
        WHEN 'future_timestamp' THEN 'ts ' || left(ts, 64) || ' is beyond the allowed clock skew'
        WHEN 'timestamp_out_of_range' THEN 'ts ' || left(ts, 64) || ' is before the first counted day, '
            || strftime(getvariable('sm_min_ts'), '%Y-%m-%d') || ' (STRIPEMETER_PARTITIONS_START)'
    END AS detail,
    CASE WHEN reason IS NOT NULL THEN {{raw_text}} END AS raw
FROM keyed
