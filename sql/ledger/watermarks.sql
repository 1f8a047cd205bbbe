-- Advances each counter's watermark to the greatest ts of the batch.
-- Params: $batch_id, $first_seq (the batch's rows are the ledger's tail: their
-- seq starts at the batch's first file_seq << 32, so zone maps skip the rest), $now.
INSERT INTO watermarks
SELECT tenant_id, metric, customer_ref, max(ts), $now
FROM events WHERE batch_id = $batch_id AND seq >= $first_seq
GROUP BY ALL
ON CONFLICT (tenant_id, metric, customer_ref) DO UPDATE
SET watermark = greatest(watermark, excluded.watermark), updated_at = excluded.updated_at;
