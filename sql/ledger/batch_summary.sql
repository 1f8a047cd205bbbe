-- What the batch changed, for the sensors: per UTC day that received counted
-- events (pending-late ones do not count yet), how many, and how many were
-- late but inside the window. Runs before watermarks.sql advances the
-- watermarks; reads batch_events.sql and late_events.sql's batch_late.
SELECT
    strftime(e.ts, '%Y-%m-%d') AS day,
    count(*) AS events,
    count(*) FILTER (WHERE e.ts < w.watermark) AS late_within_window
FROM batch_events e
LEFT JOIN watermarks w USING (tenant_id, metric, customer_ref)
ANTI JOIN batch_late l ON l.tenant_id = e.tenant_id AND l.idempotency_key = e.idempotency_key
GROUP BY ALL
ORDER BY day;
