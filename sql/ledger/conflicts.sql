-- Quarantines the rows verdicts.sql found in conflict (their key already
-- names a different event); run after append.sql, only when verdicts.sql
-- ran. Params: $batch_id, $now.
-- A conflicting row's raw text was not kept (only rows failing validation
-- keep theirs); its parsed fields stand in for it.
INSERT INTO quarantine
SELECT f.path, s.row_number,
       json_object('tenantId', s.tenant_id, 'metric', s.metric, 'customerRef', s.customer_ref,
                   'quantity', s.quantity::VARCHAR, 'ts', strftime(s.ts, '%Y-%m-%dT%H:%M:%S.%fZ'),
                   'idempotencyKey', s.idempotency_key, 'resourceId', s.resource_id, 'meta', s.meta::JSON)::VARCHAR,
       'idempotency_conflict',
       'idempotencyKey already names a different event (first seen in ' || v.first_file || ' row ' || v.first_row || ')',
       s.tenant_id, s.idempotency_key, $batch_id, $now
FROM staged s
JOIN verdicts v ON v.file_seq = s.file_seq AND v.row_number = s.row_number
JOIN batch_files f ON f.file_seq = s.file_seq
WHERE v.verdict = 'conflict';
