-- One JSONL file as raw rows: every line read as text and parsed once into
-- its fields as JSON texts. Blank lines are not events. The delimiter is a
-- control character valid JSON never carries unescaped; a line holding one
-- (or invalid UTF-8) makes the reader fail and the file is rejected.
WITH lines AS (
    SELECT ordinality AS row_number, raw,
        CASE WHEN starts_with(ltrim(raw), '{') THEN
            try(json_extract(raw, ['$.tenantId', '$.metric', '$.customerRef', '$.quantity', '$.ts',
                                   '$.idempotencyKey', '$.resourceId', '$.meta'])::VARCHAR[])
        END AS f
    FROM read_csv({{path}}, columns = {'raw': 'VARCHAR'}, header = false,
                  delim = {{delim}}, quote = '', escape = '', auto_detect = false,
                  max_line_size = 16777216,
                  compression = {{compression}})
         WITH ORDINALITY
    WHERE trim(raw) <> ''
)
SELECT
    row_number,
    raw,
    CASE WHEN f IS NULL THEN 'invalid_json' END AS parse_error,
    sm_json_text(f[1]) AS tenant_id, sm_json_kind(f[1]) AS tenant_id_type,
    sm_json_text(f[2]) AS metric, sm_json_kind(f[2]) AS metric_type,
    sm_json_text(f[3]) AS customer_ref, sm_json_kind(f[3]) AS customer_ref_type,
    CASE
        -- yyjson reads numbers as doubles; its rendering is exact for a token
        -- of up to 15 significant digits. A long rendering means a long
        -- token: take the exact token from the text, and only when every
        -- token equal to what the parser saw denotes one decimal value.
        WHEN sm_json_kind(f[4]) = 'number' AND (length(f[4]) >= 16 OR contains(lower(f[4]), 'e')) THEN (
            CASE WHEN len(list_distinct(list_transform(quantity_tokens, lambda tok: sm_decimal(tok)))) = 1
                 THEN quantity_tokens[1] END
        )
        ELSE sm_json_text(f[4])
    END AS quantity, sm_json_kind(f[4]) AS quantity_type,
    sm_json_text(f[5]) AS ts, sm_json_kind(f[5]) AS ts_type,
    sm_json_text(f[6]) AS idempotency_key, sm_json_kind(f[6]) AS idempotency_key_type,
    sm_json_text(f[7]) AS resource_id, sm_json_kind(f[7]) AS resource_id_type,
    f[8] AS meta, sm_json_kind(f[8]) AS meta_type
FROM (
    SELECT *,
        CASE WHEN sm_json_kind(f[4]) = 'number' AND (length(f[4]) >= 16 OR contains(lower(f[4]), 'e')) THEN
            list_filter(regexp_extract_all(raw, '"quantity"\s*:\s*(-?[0-9][0-9.eE+-]*)', 1),
                        lambda tok: TRY_CAST(tok AS DOUBLE) = TRY_CAST(f[4] AS DOUBLE))
        END AS quantity_tokens
    FROM lines
)
