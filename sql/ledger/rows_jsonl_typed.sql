-- A clean JSONL file's raw rows (the shape of rows_jsonl.sql) from DuckDB's
-- multi-threaded JSON reader, which parses each line once: each field's text
-- and JSON type from its JSON value. No raw line: a file with a row to
-- quarantine goes the exact way. Rows are numbered by position, like the
-- exact path's, once the count is checked against jsonl_doubts.sql's lines.
-- Params: {{path}}, {{max_line}}.
SELECT NULL::BIGINT AS row_number, NULL::VARCHAR AS raw, NULL::VARCHAR AS parse_error,
    json_extract_string(tenantId, '$') AS tenant_id, sm_json_type_kind(json_type(tenantId)) AS tenant_id_type,
    json_extract_string(metric, '$') AS metric, sm_json_type_kind(json_type(metric)) AS metric_type,
    json_extract_string(customerRef, '$') AS customer_ref, sm_json_type_kind(json_type(customerRef)) AS customer_ref_type,
    json_extract_string(quantity, '$') AS quantity, sm_json_type_kind(json_type(quantity)) AS quantity_type,
    json_extract_string(ts, '$') AS ts, sm_json_type_kind(json_type(ts)) AS ts_type,
    json_extract_string(idempotencyKey, '$') AS idempotency_key,
    sm_json_type_kind(json_type(idempotencyKey)) AS idempotency_key_type,
    json_extract_string(resourceId, '$') AS resource_id, sm_json_type_kind(json_type(resourceId)) AS resource_id_type,
    meta::VARCHAR AS meta, sm_json_type_kind(json_type(meta)) AS meta_type
FROM read_json({{path}}, format = 'newline_delimited', maximum_object_size = {{max_line}},
               columns = {'tenantId': 'JSON', 'metric': 'JSON', 'customerRef': 'JSON', 'quantity': 'JSON',
                          'ts': 'JSON', 'idempotencyKey': 'JSON', 'resourceId': 'JSON', 'meta': 'JSON'})
