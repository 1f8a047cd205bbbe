-- Lateness of the batch just appended, against each counter's watermark as
-- it stood before the batch (events of one batch are folded together, so
-- order inside a batch is never lateness). Params: $batch_id, $now,
-- $default_lateness_us. Runs after batch_events.sql, before watermarks.sql.
INSERT INTO late_events
SELECT e.tenant_id, e.metric, e.customer_ref, e.idempotency_key, e.ts,
       w.watermark - e.ts, 'pending', $batch_id, $now, NULL
FROM batch_events e
JOIN watermarks w USING (tenant_id, metric, customer_ref)
LEFT JOIN metric_catalog c USING (metric)
WHERE epoch_us(w.watermark) - epoch_us(e.ts) > coalesce(c.lateness_us, $default_lateness_us);
