-- Raw rows of a JSONL chunk read by pyarrow (ingest/fastpath.py): the
-- fields' texts with their kinds, and the quantity already typed (its text
-- is not needed: a row of the typed path is never quarantined from it).
-- pyarrow checks the scale but not the precision: a 30-digit integer part
-- arrives as a DECIMAL(38,9) DuckDB cannot hold, and is made invalid here.
SELECT
    row_number,
    NULL::VARCHAR AS raw,
    NULL::VARCHAR AS parse_error,
    tenantId AS tenant_id, CASE WHEN tenantId IS NOT NULL THEN 'string' END AS tenant_id_type,
    metric, CASE WHEN metric IS NOT NULL THEN 'string' END AS metric_type,
    customerRef AS customer_ref, CASE WHEN customerRef IS NOT NULL THEN 'string' END AS customer_ref_type,
    NULL::VARCHAR AS quantity, CASE WHEN quantity IS NOT NULL THEN 'number' END AS quantity_type,
    CASE WHEN quantity BETWEEN -99999999999999999999999999999.999999999 AND 99999999999999999999999999999.999999999
         THEN quantity END AS quantity_value,
    ts, CASE WHEN ts IS NOT NULL THEN 'string' END AS ts_type,
    idempotencyKey AS idempotency_key, CASE WHEN idempotencyKey IS NOT NULL THEN 'string' END AS idempotency_key_type,
    resourceId AS resource_id, CASE WHEN resourceId IS NOT NULL THEN 'string' END AS resource_id_type,
    NULL::VARCHAR AS meta, NULL::VARCHAR AS meta_type
FROM {{source}}
