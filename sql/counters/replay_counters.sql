-- The period counters a replay may change, as they stand before it: every
-- billing period overlapping the replayed days [$start, $end)
-- ($tenant: one tenant, or NULL for all).
SELECT tenant_id, metric, customer_ref, period_start, value
FROM period_usage
WHERE period_start < $end AND period_end > $start
  AND ($tenant::VARCHAR IS NULL OR tenant_id = $tenant)
