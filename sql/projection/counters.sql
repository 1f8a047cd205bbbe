-- The counters of the billing periods starting at $starts (each customer's
-- own period), to project.
SELECT tenant_id, customer_ref, metric, period_start, period_end, aggregation, value
FROM period_usage
WHERE period_start IN (SELECT unnest($starts::TIMESTAMP[]))
