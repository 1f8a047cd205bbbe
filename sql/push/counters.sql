-- Period counters to push for the periods $periods (TIMESTAMP[]): value and
-- aggregation from period_usage, plus since_close = Σ changes recorded in
-- period_adjustments after the period closed (value − since_close is the
-- total at close). A counter that only has adjustments counts zero now.
WITH pu AS (
    SELECT tenant_id, metric, customer_ref, period_start, period_end, aggregation, value
    FROM period_usage
    WHERE period_start IN (SELECT unnest($periods::TIMESTAMP[]))
), adj AS (
    SELECT tenant_id, metric, customer_ref, origin_period AS period_start,
           any_value(aggregation) AS aggregation, sum(delta) AS since_close
    FROM period_adjustments
    WHERE origin_period IN (SELECT unnest($periods::TIMESTAMP[]))
    GROUP BY ALL
)
SELECT tenant_id, metric, customer_ref, period_start,
       coalesce(pu.period_end, period_start + INTERVAL 1 MONTH) AS period_end,
       coalesce(pu.aggregation, adj.aggregation) AS aggregation,
       coalesce(pu.value, 0) AS value,
       coalesce(adj.since_close, 0) AS since_close
FROM pu
FULL JOIN adj USING (tenant_id, metric, customer_ref, period_start)
ORDER BY period_start, tenant_id, metric, customer_ref
