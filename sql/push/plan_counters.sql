-- TEMP push_plan: the counters of TEMP push_counters a plan must look at —
-- the unmapped ones (reported, `mapped` false) and every mapped one not
-- provably in step with Stripe. In step:
-- its Stripe units (sm_units_at_close) equal, for a sum meter, the acknowledged total
-- plus the deltas in flight, or, for a last meter, the latest value in flight,
-- else the acknowledged one (0 when there is none) — the planner's own test
-- (push/planner.py), so a counter skipped here is one it would plan nothing
-- for. TRY: a product past HUGEINT is left to the planner's exact arithmetic.
-- Needs TEMP push_counters, counter_meters, counter_customers, push_in_flight
-- and the periods macros. Params: $now, $sum_aggregations.
CREATE OR REPLACE TEMP TABLE push_plan AS
WITH u AS (
    SELECT c.*, m.event_name, m.account, m.mode, cu.stripe_customer,
           TRY(sm_units_at_close(c.value, c.since_close, c.period_end, m.grace_us, m.unit_scale, $now::TIMESTAMP))
               AS units
    FROM push_counters c
    JOIN counter_meters m USING (tenant_id, metric)
    LEFT JOIN counter_customers cu USING (customer_ref)
)
SELECT u.tenant_id, u.metric, u.customer_ref, u.period_start, u.period_end, u.aggregation, u.value, u.since_close,
       u.event_name IS NOT NULL AND u.stripe_customer IS NOT NULL AS mapped
FROM u
LEFT JOIN stripe_push_state s
    ON s.account = u.account AND s.mode = u.mode AND s.tenant_id = u.tenant_id AND s.customer_ref = u.customer_ref
   AND s.metric = u.metric AND s.period_start = u.period_start
LEFT JOIN push_in_flight f
    ON f.account = u.account AND f.mode = u.mode AND f.tenant_id = u.tenant_id AND f.customer_ref = u.customer_ref
   AND f.metric = u.metric AND f.period_start = u.period_start
WHERE u.event_name IS NULL OR u.stripe_customer IS NULL
   OR NOT coalesce(CASE WHEN u.aggregation IN (SELECT unnest($sum_aggregations::VARCHAR[]))
                        THEN u.units = coalesce(s.pushed_total, 0) + coalesce(f.delta_sum, 0)
                        ELSE u.units = coalesce(f.latest_value, s.last_value, 0) END, false)
ORDER BY u.period_start, u.tenant_id, u.metric, u.customer_ref
