-- Every unacknowledged intent, in the order it was planned.
SELECT identifier, account, mode, shadow, tenant_id, customer_ref, stripe_customer, metric, event_name, meter_id,
       meter_formula, unit_scale, period_start, period_end, revision, kind, origin_period, value, target_total,
       event_ts, status, attempts, created_at, last_error
FROM stripe_pushes
WHERE status = 'pending'
ORDER BY created_at, period_start, tenant_id, metric, customer_ref, revision
