-- cost_projection totals per currency over [$start, $end): priced counters
-- only, money exact.
SELECT currency,
       count(DISTINCT (tenant_id, customer_ref)) AS customers,
       sum(cost_to_date) AS cost_to_date,
       sum(projected_cost) AS projected_cost,
       count(projected_cost) AS projected_lines
FROM cost_projection
WHERE period_start >= $start::TIMESTAMP AND period_start < $end::TIMESTAMP AND priced
GROUP BY currency
ORDER BY currency
