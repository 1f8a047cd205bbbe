-- Calendar-month periods (UTC) for counters without a Stripe period: every
-- (tenant, metric, customer) with usage in the months overlapping
-- [$start, $end) and no Stripe period gets the months of its usage; one with Stripe periods keeps calendar
-- months only before its first Stripe period (the last one clipped there).
-- Idempotent. Params: $start, $end, $now.
CREATE OR REPLACE TEMP TABLE stripe_first AS
SELECT tenant_id, metric, customer_ref, min(period_start) AS first_start
FROM billing_periods WHERE source = 'stripe'
GROUP BY ALL;

DELETE FROM billing_periods b USING stripe_first f
WHERE b.source = 'calendar' AND b.tenant_id = f.tenant_id AND b.metric = f.metric
  AND b.customer_ref = f.customer_ref AND b.period_end > f.first_start;

INSERT INTO billing_periods
SELECT u.tenant_id, u.customer_ref, NULL, NULL, NULL, u.metric, u.month,
       least(u.month + INTERVAL 1 MONTH, coalesce(f.first_start, u.month + INTERVAL 1 MONTH)),
       'calendar', NULL, $now::TIMESTAMP
FROM (SELECT DISTINCT d.tenant_id, d.metric, d.customer_ref, date_trunc('month', d.day)::TIMESTAMP AS month
      FROM daily_usage d
      LEFT JOIN stripe_first f USING (tenant_id, metric, customer_ref)
      WHERE d.day >= date_trunc('month', $start::TIMESTAMP)::DATE
        AND d.day < (date_trunc('month', $end::TIMESTAMP - INTERVAL 1 MICROSECOND) + INTERVAL 1 MONTH)::DATE
        AND (f.first_start IS NULL OR d.day::TIMESTAMP < f.first_start)) u
LEFT JOIN stripe_first f USING (tenant_id, metric, customer_ref)
WHERE NOT EXISTS (SELECT 1 FROM billing_periods b
                  WHERE b.tenant_id = u.tenant_id AND b.metric = u.metric AND b.customer_ref = u.customer_ref
                    AND b.period_start = u.month);
