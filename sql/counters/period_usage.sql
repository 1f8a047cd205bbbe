-- Replaces period_usage for TEMP target_periods with `new_period` (TEMP, from
-- period_values.sql). A changed total of a closed period (now >= closes_at,
-- periods/close.py) is first recorded in period_adjustments. Rows of the same
-- counters overlapping [$start, $end) under other periods (calendar months a
-- subscription replaced) go. Run inside one transaction.
-- Params: $start, $end, $now, $policy, $run_id.
INSERT INTO period_adjustments
SELECT coalesce(n.tenant_id, o.tenant_id), coalesce(n.metric, o.metric), coalesce(n.customer_ref, o.customer_ref),
       t.period_start, coalesce(n.aggregation, o.aggregation),
       coalesce(o.value, 0), coalesce(n.value, 0), coalesce(n.value, 0) - coalesce(o.value, 0),
       $policy, CASE WHEN $policy = 'hold' THEN 'held' ELSE 'open' END, NULL, $now, $run_id
FROM new_period n
FULL JOIN (SELECT u.* FROM period_usage u
           SEMI JOIN target_periods t USING (tenant_id, metric, customer_ref, period_start)) o
    USING (tenant_id, metric, customer_ref, period_start)
JOIN target_periods t USING (tenant_id, metric, customer_ref, period_start)
WHERE coalesce(n.value, 0) <> coalesce(o.value, 0)
  AND $now::TIMESTAMP >= t.closes_at;

DELETE FROM period_usage u
USING (SELECT DISTINCT tenant_id, metric, customer_ref FROM target_periods) c
WHERE u.tenant_id = c.tenant_id AND u.metric = c.metric AND u.customer_ref = c.customer_ref
  AND u.period_start < $end::TIMESTAMP AND u.period_end > $start::TIMESTAMP;

INSERT INTO period_usage
SELECT tenant_id, metric, customer_ref, period_start, period_end, aggregation, value, event_count, watermark, $now
FROM new_period;
