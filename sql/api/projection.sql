-- POST /v1/usage/projection: the customer's cost projection for the open period.
SELECT metric, period_start, period_end, aggregation, usage_to_date, elapsed_fraction, projected_usage,
       is_estimate, priced, currency, cost_to_date, projected_cost, note
FROM cost_projection
WHERE tenant_id = $tenant AND customer_ref = $customer
ORDER BY metric
