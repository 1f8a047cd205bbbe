-- Customers (tenant, customer_ref) with a cost_projection row over [$start, $end),
-- and the metrics among them that have no price.
SELECT count(DISTINCT (tenant_id, customer_ref)) AS customers,
       count(*) AS counters,
       list(DISTINCT metric ORDER BY metric) FILTER (WHERE NOT priced) AS unpriced_metrics
FROM cost_projection
WHERE period_start >= $start::TIMESTAMP AND period_start < $end::TIMESTAMP
