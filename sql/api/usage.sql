-- GET /v1/usage/{customerRef}: the customer's counters for the billing period open at the as-of time.
SELECT metric, period_start, period_end, aggregation, value, event_count, watermark
FROM v_current_period_usage
WHERE tenant_id = $tenant AND customer_ref = $customer
ORDER BY metric, period_start
