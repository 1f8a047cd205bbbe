-- A clean JSONL file's raw rows (the shape of rows_jsonl.sql) from DuckDB's
-- multi-threaded JSON reader, which parses each line once. The text fields
-- are read as VARCHAR, which turns any JSON value into text: a field holding
-- something other than a string (or null) is found by jsonl_doubts.sql
-- before this runs, and sends the file the exact way. A quantity number
-- reads as its double's shortest text (1e-07 for 1E-7), which is the same
-- decimal (jsonl_doubts.sql sends longer numbers the exact way). Reading
-- each field as JSON to take its type from it parsed every field twice.
-- No raw line: a file with a row to quarantine goes the exact way. Rows are
-- numbered by position, like the exact path's, once the count is checked
-- against jsonl_doubts.sql's lines. Params: {{path}}, {{max_line}}.
SELECT NULL::BIGINT AS row_number, NULL::VARCHAR AS raw, NULL::VARCHAR AS parse_error,
    tenantId AS tenant_id, CASE WHEN tenantId IS NOT NULL THEN 'string' END AS tenant_id_type,
    metric, CASE WHEN metric IS NOT NULL THEN 'string' END AS metric_type,
    customerRef AS customer_ref, CASE WHEN customerRef IS NOT NULL THEN 'string' END AS customer_ref_type,
    quantity, CASE WHEN quantity IS NOT NULL THEN 'string' END AS quantity_type,
    ts, CASE WHEN ts IS NOT NULL THEN 'string' END AS ts_type,
    idempotencyKey AS idempotency_key, CASE WHEN idempotencyKey IS NOT NULL THEN 'string' END AS idempotency_key_type,
    resourceId AS resource_id, CASE WHEN resourceId IS NOT NULL THEN 'string' END AS resource_id_type,
    meta::VARCHAR AS meta, sm_json_type_kind(json_type(meta)) AS meta_type
FROM read_json({{path}}, format = 'newline_delimited', maximum_object_size = {{max_line}},
               columns = {'tenantId': 'VARCHAR', 'metric': 'VARCHAR', 'customerRef': 'VARCHAR', 'quantity': 'VARCHAR',
                          'ts': 'VARCHAR', 'idempotencyKey': 'VARCHAR', 'resourceId': 'VARCHAR', 'meta': 'JSON'})
