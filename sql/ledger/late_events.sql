-- Lateness of the batch just appended, against each counter's watermark as
-- it stood before the batch (events of one batch are folded together, so
-- order inside a batch is never lateness). Params: $batch_id, $now,
-- $default_lateness_us. Runs after batch_events.sql, before watermarks.sql.
-- The batch's late events stay in TEMP batch_late too, so that
-- batch_summary.sql and the batch's count read them rather than every late
-- event ever recorded.
CREATE OR REPLACE TEMP TABLE batch_late AS
SELECT e.tenant_id, e.metric, e.customer_ref, e.idempotency_key, e.ts, w.watermark - e.ts AS lateness
FROM batch_events e
JOIN watermarks w USING (tenant_id, metric, customer_ref)
LEFT JOIN metric_catalog c USING (metric)
WHERE epoch_us(w.watermark) - epoch_us(e.ts) > coalesce(c.lateness_us, $default_lateness_us);

INSERT INTO late_events
SELECT tenant_id, metric, customer_ref, idempotency_key, ts, lateness, 'pending', $batch_id, $now, NULL
FROM batch_late;
