-- One JSONL file as raw rows: every line read as text and parsed once into
-- its fields as JSON texts. The delimiter is a control character valid JSON
-- never carries unescaped; a line holding one (or invalid UTF-8) makes the
-- reader fail and the file is rejected. Lines are numbered by their position
-- once staged (WITH ORDINALITY would run the whole insert on one thread), so
-- blank lines stay in as 'blank_line' rows until then.
WITH lines AS (
    SELECT raw,
        CASE WHEN starts_with(raw, '{') OR starts_with(ltrim(raw), '{') THEN
            try(json_extract(raw, ['$.tenantId', '$.metric', '$.customerRef', '$.quantity', '$.ts',
                                   '$.idempotencyKey', '$.resourceId', '$.meta'])::VARCHAR[])
        END AS f
    FROM read_csv({{path}}, columns = {'raw': 'VARCHAR'}, header = false,
                  delim = {{delim}}, quote = '', escape = '', auto_detect = false,
                  max_line_size = {{max_line}},
                  compression = {{compression}})
),
-- yyjson reads numbers as doubles, so a number's value is taken from its
-- text: the token after the only "quantity" key of the line, if it is the
-- number the parser saw; else every "quantity" token equal to it, when they
-- all denote one decimal. Otherwise NULL, which the validation reports as
-- invalid_quantity. An integer without point or exponent was read as a
-- 64-bit integer (or kept as text when larger): exact as it stands.
numbers AS (
    SELECT *,
        CASE WHEN sm_json_kind(f[4]) = 'number'
                  AND (contains(f[4], '.') OR contains(f[4], 'e') OR contains(f[4], 'E'))
             THEN strpos(raw, '"quantity"') END AS key_at
    FROM lines
),
tokens AS (
    SELECT *,
        regexp_extract(substr(raw, key_at + 10, 80), '^[\s:]*(-?[0-9][0-9.eE+-]*)', 1) AS first_token,
        strpos(substr(raw, key_at + 10), '"quantity"') = 0 AS only_key
    FROM numbers
),
checked_tokens AS (
    SELECT *,
        coalesce(only_key AND TRY_CAST(first_token AS DOUBLE) = TRY_CAST(f[4] AS DOUBLE), false) AS first_token_exact
    FROM tokens
),
candidates AS (
    SELECT *,
        -- the regex over the whole line only when the key repeats or the token differs
        CASE WHEN key_at IS NOT NULL AND NOT first_token_exact THEN list_filter(
            regexp_extract_all(raw, '"quantity"\s*:\s*(-?[0-9][0-9.eE+-]*)', 1),
            lambda tok: TRY_CAST(tok AS DOUBLE) = TRY_CAST(f[4] AS DOUBLE))
        END AS candidates
    FROM checked_tokens
)
SELECT
    NULL::BIGINT AS row_number,
    raw,
    CASE
        WHEN f IS NOT NULL THEN NULL
        -- the cheap test first: trim copies the line
        WHEN raw IS NULL OR trim(raw) = '' THEN 'blank_line'
        ELSE 'invalid_json'
    END AS parse_error,
    sm_json_text(f[1]) AS tenant_id, sm_json_kind(f[1]) AS tenant_id_type,
    sm_json_text(f[2]) AS metric, sm_json_kind(f[2]) AS metric_type,
    sm_json_text(f[3]) AS customer_ref, sm_json_kind(f[3]) AS customer_ref_type,
    CASE
        WHEN key_at IS NULL THEN sm_json_text(f[4])
        WHEN first_token_exact THEN first_token
        WHEN len(list_distinct(list_transform(candidates, lambda tok: sm_decimal(tok)))) = 1 THEN candidates[1]
    END AS quantity, sm_json_kind(f[4]) AS quantity_type,
    sm_json_text(f[5]) AS ts, sm_json_kind(f[5]) AS ts_type,
    sm_json_text(f[6]) AS idempotency_key, sm_json_kind(f[6]) AS idempotency_key_type,
    sm_json_text(f[7]) AS resource_id, sm_json_kind(f[7]) AS resource_id_type,
    f[8] AS meta, sm_json_kind(f[8]) AS meta_type
FROM candidates
