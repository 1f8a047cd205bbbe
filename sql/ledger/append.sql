-- Appends one validated batch; run inside the batch transaction.
-- Params: $batch_id, $now.
INSERT INTO events
SELECT s.tenant_id, s.metric, s.customer_ref, s.resource_id, s.quantity, s.ts,
       s.idempotency_key, s.key_hash, s.key_derived, s.meta::JSON, f.path, s.row_number, $batch_id,
       (s.file_seq << 32) | s.row_number, $now
FROM staged s
JOIN batch_files f USING (file_seq)
ANTI JOIN verdicts v ON v.file_seq = s.file_seq AND v.row_number = s.row_number
WHERE s.reason IS NULL;

INSERT INTO quarantine
SELECT f.path, s.row_number, s.raw, s.reason, s.detail, s.tenant_id, s.idempotency_key, $batch_id, $now
FROM staged s JOIN batch_files f USING (file_seq)
WHERE s.reason IS NOT NULL;

INSERT INTO landing_files
SELECT f.file_seq, f.path, f.content_hash, f.format, f.size_bytes,
       coalesce(c.total, 0), coalesce(c.total, 0) - coalesce(c.invalid, 0) - coalesce(c.duplicate, 0) - coalesce(c.conflict, 0),
       coalesce(c.duplicate, 0), coalesce(c.invalid, 0) + coalesce(c.conflict, 0),
       f.status, f.error, $batch_id, $now
FROM batch_files f
LEFT JOIN (
    SELECT s.file_seq,
           count(*) AS total,
           count(*) FILTER (WHERE s.reason IS NOT NULL) AS invalid,
           count(*) FILTER (WHERE v.verdict = 'duplicate') AS duplicate,
           count(*) FILTER (WHERE v.verdict = 'conflict') AS conflict
    FROM staged s LEFT JOIN verdicts v ON v.file_seq = s.file_seq AND v.row_number = s.row_number
    GROUP BY s.file_seq
) c USING (file_seq);
