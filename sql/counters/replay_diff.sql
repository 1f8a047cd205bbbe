-- Per-counter diff of a replay: every period counter overlapping the
-- replayed days [$start, $end) whose value changed against TEMP
-- replay_before (counters that appeared or vanished included).
SELECT coalesce(n.tenant_id, o.tenant_id) AS tenant_id, coalesce(n.metric, o.metric) AS metric,
       coalesce(n.customer_ref, o.customer_ref) AS customer_ref,
       coalesce(n.period_start, o.period_start) AS period_start, o.value AS old, n.value AS new
FROM (SELECT tenant_id, metric, customer_ref, period_start, value FROM period_usage
      WHERE period_start < $end AND period_end > $start
        AND ($tenant::VARCHAR IS NULL OR tenant_id = $tenant)) n
FULL JOIN replay_before o USING (tenant_id, metric, customer_ref, period_start)
WHERE n.value IS DISTINCT FROM o.value
ORDER BY 1, 2, 3, 4
