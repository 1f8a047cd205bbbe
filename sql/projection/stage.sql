-- Every counter of `projection_counters` (counters.sql with the value in 1e-9
-- units as two 64-bit words: v9) with its projection and the price that applies.
--
-- Per period (start, end): the elapsed part at $now in exact microseconds
-- (clamped to [0, total]) as a reduced ratio; the elapsed fraction shown
-- (half away from zero to 6 places); whether less than $min_elapsed has
-- elapsed (no projection); and the largest |v9| whose projection stays in
-- HUGEINT's range.
-- Per counter: projected9, the projection in 1e-9 units: the value itself
-- unless the aggregation accumulates ($accumulating), else value / elapsed
-- fraction rounded half away from zero, exactly; `exact` where that would
-- leave HUGEINT's range (Python projects those: exact_usage.sql). The price:
-- the subscription item's Stripe price (projection_stripe_prices, parsed
-- ones only) billed in whole meter units, else the tenant's config price
-- (projection_tenant_prices: an override, possibly unpriced), else the
-- config's default (projection_default_prices).
CREATE OR REPLACE TEMP TABLE projection_stage AS
WITH spans AS (
    SELECT period_start, period_end, total_us, elapsed_us, ratio_total, ratio_elapsed,
           elapsed_us * $min_elapsed_den < total_us * $min_elapsed_num AS too_early,
           (100000000000000000000000000000000000000 - ratio_elapsed) // (2 * ratio_total::HUGEINT) AS value_limit,
           (((2 * elapsed_us::HUGEINT * 1000000 + total_us) // (2 * total_us))::DECIMAL(38, 0)
            * 0.000001)::DECIMAL(7, 6) AS fraction
    FROM (SELECT *, total_us // gcd(elapsed_us, total_us) AS ratio_total,
                 elapsed_us // gcd(elapsed_us, total_us) AS ratio_elapsed
          FROM (SELECT *, least(greatest(epoch_us($now::TIMESTAMP) - epoch_us(period_start), 0), total_us) AS elapsed_us
                FROM (SELECT period_start, period_end,
                             CASE WHEN period_end > period_start THEN epoch_us(period_end) - epoch_us(period_start)
                                  ELSE error(format('period end {} is not after its start {}', period_end, period_start))
                             END AS total_us
                      FROM (SELECT DISTINCT period_start, period_end FROM projection_counters))))
), items AS (
    SELECT b.period_start, b.tenant_id, b.customer_ref, b.metric,
           any_value(s.price_id) AS price_id, any_value(s.unit_scale) AS unit_scale
    FROM billing_periods b
    JOIN projection_stripe_prices s ON s.account = b.account AND s.price = b.price AND s.metric = b.metric
    WHERE b.source = 'stripe' AND b.period_start IN (SELECT unnest($starts::TIMESTAMP[]))
    GROUP BY ALL
), counters AS (
    SELECT c.tenant_id, c.customer_ref, c.metric, c.period_start, c.period_end, c.aggregation, c.value,
           c.v9, s.total_us, s.elapsed_us, s.fraction, s.too_early,
           CASE WHEN s.too_early OR NOT list_contains($accumulating::VARCHAR[], c.aggregation) THEN NULL
                WHEN abs(c.v9) <= s.value_limit THEN 2 * s.ratio_elapsed::HUGEINT END AS divisor,
           CASE WHEN abs(c.v9) <= s.value_limit THEN 2 * abs(c.v9) * s.ratio_total + s.ratio_elapsed END AS dividend,
           NOT s.too_early AND list_contains($accumulating::VARCHAR[], c.aggregation)
               AND abs(c.v9) > s.value_limit AS exact,
           CASE WHEN i.price_id IS NOT NULL THEN i.price_id
                WHEN t.metric IS NOT NULL THEN t.price_id
                ELSE d.price_id END AS price_id,
           coalesce(i.unit_scale, 0) AS unit_scale
    FROM (SELECT * EXCLUDE (v9_low, v9_high), v9_high::HUGEINT * 18446744073709551616 + v9_low::HUGEINT AS v9
          FROM projection_counters) c
    JOIN spans s ON s.period_start = c.period_start AND s.period_end = c.period_end
    LEFT JOIN items i ON i.period_start = c.period_start AND i.tenant_id = c.tenant_id
                     AND i.customer_ref = c.customer_ref AND i.metric = c.metric
    LEFT JOIN projection_tenant_prices t ON t.tenant_id = c.tenant_id AND t.metric = c.metric
    LEFT JOIN projection_default_prices d ON d.metric = c.metric
)
SELECT tenant_id, customer_ref, metric, period_start, period_end, aggregation, value, v9, total_us, elapsed_us,
       fraction, too_early, exact, price_id, unit_scale,
       CASE WHEN too_early THEN NULL
            WHEN divisor IS NOT NULL THEN sign(v9) * sm_floor_div(dividend, divisor)
            WHEN NOT exact THEN v9 END AS projected9,
       false AS too_large
FROM counters
