-- Period counters whose sum would overflow DECIMAL(38,9): left out of the
-- recomputation and reported (see daily_usage.sql; needs counters/macros.sql).
-- Params: $start, $end, $tenant.
CREATE OR REPLACE TEMP TABLE overflowing_periods AS
SELECT tenant_id, metric, customer_ref
FROM daily_usage
WHERE day >= $start::DATE AND day < $end::DATE AND ($tenant IS NULL OR tenant_id = $tenant)
  AND abs(sum_quantity) >= 1e18
GROUP BY ALL
HAVING sm_sum_overflows(sum_quantity);
