-- The events the batch just appended (the ledger's tail: their seq starts at
-- the batch's first file_seq << 32, so zone maps skip every older row group),
-- for late_events.sql, batch_summary.sql and watermarks.sql. A table, so
-- that their joins with `watermarks` hash the batch's rows rather than every
-- counter's watermark. Params: $batch_id, $first_seq.
CREATE OR REPLACE TEMP TABLE batch_events AS
SELECT tenant_id, metric, customer_ref, idempotency_key, ts
FROM events WHERE batch_id = $batch_id AND seq >= $first_seq;
