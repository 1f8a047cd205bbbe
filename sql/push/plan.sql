-- The push plan (DESIGN §3, §4), set-based. TEMP push_plan: one row per
-- counter of TEMP push_counters (with the vanished ones, counting zero) and
-- per open carry-forward group (TEMP push_open_adjustments by counter and
-- origin period, bound for the customer's open period in TEMP carry_periods),
-- with the `action` the plan takes:
--   intent              a push is planned (TEMP new_intents)
--   in_step             nothing to push
--   deferred            no allowed second yet (the period began < 5 min ago,
--                       or a last meter's timestamp could not grow)
--   unmapped            no meter or no Stripe customer (reported)
--   too_large           its Stripe units do not fit a meter event's whole
--                       number (reported; the push fails, the others go)
--   carry_unmapped, carry_not_summable: open adjustments left open (a
--                       max/last change has nothing to carry)
--   settled             a carry-forward worth less than one scaled unit:
--                       its adjustments are done without a send
-- The rules:
-- - sum/count counters push floor(scale × total) − pushed_total − in flight
--   (signed), so Σ pushed equals the scaled total exactly, whatever the
--   number of increments: rounding never accumulates.
-- - max/last counters push the scaled value when it differs from the latest
--   pushed or in-flight value, with a timestamp later than any earlier push.
-- - A closed period is held at its total at close (sm_units_at_close); the
--   changes since travel as carry_forward intents into the open period.
-- - The event timestamp is the period's latest second that is ≥ 5 min before
--   now, within its whole minutes (meter event summaries are minute-aligned,
--   so a period edge at 13:42:11 shares its minute with the neighbouring
--   period); a period whose second is older than Stripe's 35 days (less an
--   hour for a retry later in the run, and clock skew) is skipped_too_old.
-- - One (counter, revision) names exactly one push: revisions follow the
--   greatest one stored or in flight, counters before carry-forwards.
-- Needs TEMP push_counters, push_in_flight, push_open_adjustments,
-- carry_periods, counter_meters, counter_customers and the periods macros.
-- Params: $now, $now_s (its epoch second), $sum_aggregations, $shadow_status
-- and $primary_status (status of a new intent of a shadow / other mapping),
-- $run_id.
CREATE OR REPLACE TEMP TABLE push_plan AS
WITH clock AS (
    SELECT $now_s - 5 * 60 AS settled_s, $now_s - 35 * 86400 + 3600 AS oldest_s
), counters AS (
    SELECT 'counter' AS source, c.tenant_id, c.metric, c.customer_ref, c.period_start, c.period_end,
           list_contains($sum_aggregations::VARCHAR[], c.aggregation) AS summed, true AS summable,
           NULL::TIMESTAMP AS origin_period, 0::BIGINT AS adjustments,
           -- NULL when scaling overflows: only a counter the plan would push needs its units
           TRY(sm_units_at_close(c.value, c.since_close, c.period_end, m.grace_us, m.unit_scale, $now::TIMESTAMP))
               AS units
    FROM push_counters c
    JOIN counter_meters m USING (tenant_id, metric)
), carry_groups AS (
    SELECT a.tenant_id, a.metric, a.customer_ref, a.origin_period, p.period_start, p.period_end,
           bool_and(list_contains($sum_aggregations::VARCHAR[], a.aggregation)) AS summable,
           count(*) AS adjustments, sum(a.delta) AS delta, any_value(m.unit_scale) AS scale
    FROM push_open_adjustments a
    JOIN carry_periods p USING (tenant_id, metric, customer_ref)
    JOIN counter_meters m USING (tenant_id, metric)
    GROUP BY a.tenant_id, a.metric, a.customer_ref, a.origin_period, p.period_start, p.period_end
), carries AS (
    SELECT 'carry_forward' AS source, g.* EXCLUDE (delta, scale), true AS summed,
           TRY(CAST(floor(g.delta * g.scale) AS HUGEINT)) AS units
    FROM carry_groups g
), targeted AS (
    SELECT r.*, m.event_name, m.meter_id, m.shadow, m.account, m.mode, m.unit_scale, cu.stripe_customer,
           m.event_name IS NOT NULL AND cu.stripe_customer IS NOT NULL AS mapped
    FROM (SELECT * FROM counters UNION ALL BY NAME SELECT * FROM carries) r
    JOIN counter_meters m USING (tenant_id, metric)
    LEFT JOIN counter_customers cu USING (customer_ref)
), known AS (
    SELECT t.*,
           CASE WHEN t.source = 'carry_forward' THEN 'carry_forward' WHEN t.summed THEN 'delta' ELSE 'value' END
               AS kind,
           CASE WHEN t.source = 'counter' AND t.summed
                THEN t.units - coalesce(s.pushed_total, 0) - coalesce(f.delta_sum, 0)
                ELSE t.units END AS value,
           coalesce(f.latest_value, s.last_value) AS previous,
           CASE WHEN NOT t.summed THEN greatest(s.last_ts, f.max_ts) END AS after,
           greatest(coalesce(s.revision, 0), coalesce(f.max_revision, 0)) AS base_revision,
           coalesce(s.carried_in, 0) + coalesce(f.carry_sum, 0) AS carried,
           CASE WHEN t.shadow THEN $shadow_status ELSE $primary_status END AS target_status,
           (epoch_us(t.period_start) // 1000000 + 59) // 60 * 60 AS first_s,
           epoch_us(t.period_end) // 1000000 // 60 * 60 AS end_s,
           clock.settled_s, clock.oldest_s
    FROM targeted t
    CROSS JOIN clock
    LEFT JOIN stripe_push_state s
        ON t.mapped AND s.account = t.account AND s.mode = t.mode AND s.tenant_id = t.tenant_id
       AND s.customer_ref = t.customer_ref AND s.metric = t.metric AND s.period_start = t.period_start
    LEFT JOIN push_in_flight f
        ON t.mapped AND f.account = t.account AND f.mode = t.mode AND f.tenant_id = t.tenant_id
       AND f.customer_ref = t.customer_ref AND f.metric = t.metric AND f.period_start = t.period_start
), bounded AS (
    SELECT k.*, least(k.end_s - 1, k.settled_s) AS latest_s FROM known k
), stamped AS (
    SELECT k.*,
           k.latest_s >= k.first_s AND k.latest_s < k.oldest_s AS too_old,
           CASE WHEN k.latest_s < k.first_s THEN NULL
                WHEN k.latest_s < k.oldest_s OR k.after IS NULL OR k.latest_s > k.after THEN k.latest_s
                WHEN k.after + 1 <= k.settled_s AND k.after + 1 < k.end_s THEN k.after + 1
           END AS event_ts
    FROM bounded k
)
SELECT s.*,
       CASE WHEN s.source = 'carry_forward' AND NOT s.summable THEN 'carry_not_summable'
            WHEN s.source = 'carry_forward' AND NOT s.mapped THEN 'carry_unmapped'
            WHEN NOT s.mapped THEN 'unmapped'
            WHEN TRY_CAST(s.units AS BIGINT) IS NULL OR TRY_CAST(s.value AS BIGINT) IS NULL THEN 'too_large'
            WHEN s.kind = 'carry_forward' AND s.value = 0
                THEN CASE WHEN s.target_status = 'pending' THEN 'settled' ELSE 'in_step' END
            WHEN s.kind = 'delta' AND s.value = 0 THEN 'in_step'
            WHEN s.kind = 'value' AND (coalesce(s.value = s.previous, false) OR s.previous IS NULL AND s.value = 0)
                THEN 'in_step'
            WHEN s.event_ts IS NULL THEN 'deferred'
            ELSE 'intent' END AS action,
       CASE WHEN s.source = 'counter' AND s.too_old THEN 'skipped_too_old' ELSE s.target_status END AS status
FROM stamped s;

CREATE OR REPLACE TEMP TABLE new_intents AS
WITH numbered AS (
    SELECT p.*,
           p.base_revision + row_number() OVER (
               PARTITION BY p.account, p.mode, p.tenant_id, p.customer_ref, p.metric, p.period_start
               ORDER BY p.source = 'carry_forward', p.origin_period) AS revision,
           CASE WHEN p.kind <> 'carry_forward' THEN p.units
                ELSE p.carried + sum(p.value) OVER (
                    PARTITION BY p.kind, p.account, p.mode, p.tenant_id, p.customer_ref, p.metric, p.period_start
                    ORDER BY p.origin_period ROWS UNBOUNDED PRECEDING) END AS target_total
    FROM push_plan p
    WHERE p.action = 'intent'
)
SELECT 'smp_' || sha256(concat_ws(chr(31), account, mode, tenant_id, customer_ref, metric,
                                  strftime(period_start, '%Y-%m-%dT%H:%M:%SZ'), revision::VARCHAR)) AS identifier,
       account, mode, shadow, tenant_id, customer_ref, stripe_customer, metric, event_name, meter_id,
       CASE WHEN summed THEN 'sum' ELSE 'last' END AS meter_formula, unit_scale, period_start, period_end,
       revision, kind, origin_period, value::BIGINT AS value, target_total::BIGINT AS target_total,
       event_ts::BIGINT AS event_ts, status, $run_id AS run_id, $now::TIMESTAMP AS created_at
FROM numbered;

-- The open adjustments each new carry_forward intent carries.
CREATE OR REPLACE TEMP TABLE new_links AS
SELECT i.identifier, a.tenant_id, a.metric, a.customer_ref, a.origin_period, a.recorded_at, a.run_id
FROM new_intents i
JOIN push_open_adjustments a
    ON i.kind = 'carry_forward' AND a.tenant_id = i.tenant_id AND a.metric = i.metric
   AND a.customer_ref = i.customer_ref AND a.origin_period = i.origin_period;

CREATE OR REPLACE TEMP TABLE settled_adjustments AS
SELECT a.tenant_id, a.metric, a.customer_ref, a.origin_period, a.recorded_at, a.run_id, p.period_start AS target_period
FROM push_plan p
JOIN push_open_adjustments a USING (tenant_id, metric, customer_ref, origin_period)
WHERE p.action = 'settled';
