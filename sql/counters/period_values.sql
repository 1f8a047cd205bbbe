-- Period counters folded from daily_usage over [$start, $end), each with its
-- metric's aggregation. A query, so replay can diff it before applying.
-- Needs TEMP metric_catalog and overflowing_periods (period_overflows.sql). Params: $start, $end, $tenant (NULL = all).
SELECT d.tenant_id, d.metric, d.customer_ref,
       $start::TIMESTAMP AS period_start, $end::TIMESTAMP AS period_end,
       coalesce(c.aggregation, 'sum') AS aggregation,
       CASE coalesce(c.aggregation, 'sum')
           WHEN 'sum' THEN sum(d.sum_quantity)
           WHEN 'count' THEN sum(d.event_count)
           WHEN 'max' THEN max(d.max_quantity)
           WHEN 'last' THEN arg_max(d.last_quantity, struct_pack(d.last_ts, d.last_seq, d.last_key))
       END::DECIMAL(38, 9) AS value,
       sum(d.event_count)::BIGINT AS event_count,
       max(d.watermark) AS watermark
FROM daily_usage d
LEFT JOIN metric_catalog c USING (metric)
ANTI JOIN overflowing_periods o
    ON o.tenant_id = d.tenant_id AND o.metric = d.metric AND o.customer_ref = d.customer_ref
WHERE d.day >= $start::DATE AND d.day < $end::DATE
  AND ($tenant IS NULL OR d.tenant_id = $tenant)
GROUP BY d.tenant_id, d.metric, d.customer_ref, c.aggregation
