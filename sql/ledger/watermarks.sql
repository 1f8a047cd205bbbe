-- Advances each counter's watermark to the greatest ts of the batch.
-- Params: $batch_id, $now.
INSERT INTO watermarks
SELECT tenant_id, metric, customer_ref, max(ts), $now
FROM events WHERE batch_id = $batch_id
GROUP BY ALL
ON CONFLICT (tenant_id, metric, customer_ref) DO UPDATE
SET watermark = greatest(watermark, excluded.watermark), updated_at = excluded.updated_at;
