-- The counters of one billing period, to project or backtest.
-- Params: $start (period_start), $tenant (NULL for every tenant).
SELECT tenant_id, customer_ref, metric, aggregation, value, period_end
FROM period_usage
WHERE period_start = $start::TIMESTAMP
  AND ($tenant::VARCHAR IS NULL OR tenant_id = $tenant::VARCHAR)
ORDER BY tenant_id, customer_ref, metric
