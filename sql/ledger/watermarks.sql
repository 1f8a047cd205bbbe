-- Advances each counter's watermark to the greatest ts of the batch, read
-- from batch_events.sql (the batch's appended events). Params: $now.
INSERT INTO watermarks
SELECT tenant_id, metric, customer_ref, max(ts), $now
FROM batch_events
GROUP BY ALL
ON CONFLICT (tenant_id, metric, customer_ref) DO UPDATE
SET watermark = greatest(watermark, excluded.watermark), updated_at = excluded.updated_at;
