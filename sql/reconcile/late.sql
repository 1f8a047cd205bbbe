-- Late events not applied yet, per counter, inside [$period_start, $period_end).
SELECT tenant_id, metric, customer_ref, count(*) AS late_pending
FROM late_events
WHERE status = 'pending' AND ts >= $period_start AND ts < $period_end
GROUP BY ALL
