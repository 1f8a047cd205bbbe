-- The customers with the largest projected cost over [$start, $end) (cost to
-- date where nothing is projected yet), per currency, at most $limit.
SELECT tenant_id, customer_ref, currency,
       sum(cost_to_date) AS cost_to_date,
       sum(projected_cost) AS projected_cost
FROM cost_projection
WHERE period_start >= $start::TIMESTAMP AND period_start < $end::TIMESTAMP AND priced
GROUP BY tenant_id, customer_ref, currency
ORDER BY coalesce(sum(projected_cost), sum(cost_to_date)) DESC, sum(cost_to_date) DESC, tenant_id, customer_ref
LIMIT $limit
