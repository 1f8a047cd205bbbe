-- Period counters whose sum would overflow DECIMAL(38,9): left out of the
-- recomputation and reported (see daily_usage.sql). Reads the days touching
-- each of TEMP target_periods (edge days whole: conservative).
-- Needs counters/macros.sql.
CREATE OR REPLACE TEMP TABLE overflowing_periods AS
SELECT p.tenant_id, p.metric, p.customer_ref
FROM target_periods p
JOIN daily_usage d
  ON d.tenant_id = p.tenant_id AND d.metric = p.metric AND d.customer_ref = p.customer_ref
 AND d.day >= p.period_start::DATE AND d.day <= p.period_end::DATE
WHERE abs(d.sum_quantity) >= 1e18
GROUP BY ALL
HAVING sm_sum_overflows(d.sum_quantity);
