-- The billing periods overlapping [$start, $end) (of one tenant, or all when
-- $tenant is NULL), one per (tenant, metric, customer, period_start), with the
-- moment each closes (sm_closes_at: period_end + the account's grace period).
-- Needs TEMP period_grace and the periods macros (periods/close.py).
SELECT b.tenant_id, b.metric, b.customer_ref, b.period_start, max(b.period_end) AS period_end,
       sm_closes_at(max(b.period_end), coalesce(any_value(g.grace_us), $default_grace_us)) AS closes_at
FROM billing_periods b
LEFT JOIN period_grace g USING (tenant_id, metric)
WHERE b.period_start < $end::TIMESTAMP AND b.period_end > $start::TIMESTAMP
  AND ($tenant IS NULL OR b.tenant_id = $tenant)
GROUP BY b.tenant_id, b.metric, b.customer_ref, b.period_start
