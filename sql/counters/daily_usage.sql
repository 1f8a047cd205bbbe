-- Recomputes daily_usage for the days in [$start, $end): delete the window,
-- insert the recomputation from the ledger. Events still pending as late
-- beyond the window do not count until a replay applies them.
-- Run inside one transaction. Params: $start, $end, $now, $tenant (NULL = all).
DELETE FROM daily_usage
WHERE day >= $start::DATE AND day < $end::DATE
  AND ($tenant IS NULL OR tenant_id = $tenant);

-- Every day of the window has new rows (or none), whatever the tenant.
DELETE FROM daily_usage_days WHERE day >= $start::DATE AND day < $end::DATE;
INSERT INTO daily_usage_days
SELECT d::DATE, nextval('daily_usage_version') FROM range($start::DATE::TIMESTAMP, $end::DATE::TIMESTAMP, INTERVAL 1 DAY) t(d);

-- Counters whose sum cannot be represented as DECIMAL(38,9) (|total| >= 1e29)
-- are left out, so one tenant's absurd quantities never stop everyone's
-- counters; the asset reports them and fails. Only rows of |quantity| >= 1e18
-- can get there, so the check reads almost nothing. Needs counters/macros.sql.
CREATE OR REPLACE TEMP TABLE overflowing_days AS
SELECT tenant_id, metric, customer_ref, ts::DATE AS day
FROM events
WHERE ts >= $start AND ts < $end AND ($tenant IS NULL OR tenant_id = $tenant)
  AND abs(quantity) >= 1e18
GROUP BY ALL
HAVING sm_sum_overflows(quantity);

-- One struct-valued arg_max picks the latest event (by ts, then ingestion
-- order, then key) once; three separate arg_max calls cost five times more.
INSERT INTO daily_usage
SELECT tenant_id, metric, customer_ref, day, sum_quantity, event_count, max_quantity,
       latest.quantity, watermark, latest.seq, latest.key, watermark, $now
FROM (
    SELECT e.tenant_id, e.metric, e.customer_ref, e.ts::DATE AS day,
           sum(e.quantity)::DECIMAL(38, 9) AS sum_quantity,
           count(*) AS event_count,
           max(e.quantity) AS max_quantity,
           arg_max(struct_pack(quantity := e.quantity, seq := e.seq, key := e.idempotency_key),
                   struct_pack(e.ts, e.seq, e.idempotency_key)) AS latest,
           max(e.ts) AS watermark
    FROM events e
    ANTI JOIN late_events l
        ON l.tenant_id = e.tenant_id AND l.idempotency_key = e.idempotency_key AND l.status = 'pending'
    ANTI JOIN overflowing_days o
        ON o.tenant_id = e.tenant_id AND o.metric = e.metric AND o.customer_ref = e.customer_ref
       AND o.day = e.ts::DATE
    WHERE e.ts >= $start AND e.ts < $end
      AND ($tenant IS NULL OR e.tenant_id = $tenant)
    GROUP BY ALL
);
