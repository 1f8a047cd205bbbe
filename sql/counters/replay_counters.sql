-- The period counters a replay may change, as they stand before it
-- ($periods: period starts; $tenant: one tenant, or NULL for all).
SELECT tenant_id, metric, customer_ref, period_start, value
FROM period_usage
WHERE period_start IN (SELECT unnest($periods::TIMESTAMP[]))
  AND ($tenant::VARCHAR IS NULL OR tenant_id = $tenant)
