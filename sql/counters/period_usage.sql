-- Replaces period_usage for one period with `new_period` (TEMP, from
-- period_values.sql). When the period is closed (now >= period_end + the
-- metric's lateness window), every changed total is first recorded in
-- period_adjustments. Run inside one transaction.
-- Params: $start, $now, $default_lateness_us, $policy, $run_id, $tenant.
INSERT INTO period_adjustments
SELECT coalesce(n.tenant_id, o.tenant_id), coalesce(n.metric, o.metric), coalesce(n.customer_ref, o.customer_ref),
       $start::TIMESTAMP, coalesce(n.aggregation, o.aggregation),
       coalesce(o.value, 0), coalesce(n.value, 0), coalesce(n.value, 0) - coalesce(o.value, 0),
       $policy, CASE WHEN $policy = 'hold' THEN 'held' ELSE 'open' END, NULL, $now, $run_id
FROM new_period n
FULL JOIN (SELECT * FROM period_usage WHERE period_start = $start::TIMESTAMP
                                        AND ($tenant IS NULL OR tenant_id = $tenant)) o
    USING (tenant_id, metric, customer_ref)
LEFT JOIN metric_catalog c ON c.metric = coalesce(n.metric, o.metric)
WHERE coalesce(n.value, 0) <> coalesce(o.value, 0)
  AND epoch_us($now::TIMESTAMP) >= epoch_us(coalesce(n.period_end, o.period_end))
                                  + coalesce(c.lateness_us, $default_lateness_us);

DELETE FROM period_usage
WHERE period_start = $start::TIMESTAMP AND ($tenant IS NULL OR tenant_id = $tenant);

INSERT INTO period_usage
SELECT tenant_id, metric, customer_ref, period_start, period_end, aggregation, value, event_count, watermark, $now
FROM new_period;
