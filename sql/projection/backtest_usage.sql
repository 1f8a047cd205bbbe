-- The counters of every customer's billing period starting in [$start, $end)
-- (a calendar month: each customer's own period that begins in it), to backtest.
-- Params: $start, $end, $tenant (NULL for every tenant).
SELECT tenant_id, customer_ref, metric, aggregation, value
FROM period_usage
WHERE period_start >= $start::TIMESTAMP AND period_start < $end::TIMESTAMP
  AND ($tenant::VARCHAR IS NULL OR tenant_id = $tenant::VARCHAR)
ORDER BY tenant_id, customer_ref, metric
