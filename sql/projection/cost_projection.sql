-- Replaces the cost_projection rows of the periods starting at $starts with
-- the staged counters (projection_stage) and the costs of their lines
-- (projection_line_costs). Run inside one transaction.
-- Params: $starts, $now (computed_at), the notes $too_early, $too_large,
-- $unpriced, $negative.
DELETE FROM cost_projection WHERE period_start IN (SELECT unnest($starts::TIMESTAMP[]));

INSERT INTO cost_projection BY NAME
SELECT s.tenant_id, s.customer_ref, s.metric, s.period_start, s.period_end, s.aggregation,
       s.value AS usage_to_date,
       s.fraction AS elapsed_fraction,
       (s.projected9::DECIMAL(38, 0) * 0.000000001)::DECIMAL(38, 9) AS projected_usage,
       -- Until the period is over every projection is an extrapolation (or, for
       -- max/last, a value that may still rise).
       s.projected9 IS NOT NULL AND s.elapsed_us < s.total_us AS is_estimate,
       s.price_id IS NOT NULL AS priced,
       p.currency,
       d.cost AS cost_to_date,
       f.cost AS projected_cost,
       nullif(concat_ws('; ', CASE WHEN s.too_early THEN $too_early WHEN s.too_large THEN $too_large END,
                              CASE WHEN s.price_id IS NULL THEN $unpriced
                                   WHEN NOT sm_priceable(s.price_id, s.v9, s.projected9) THEN $negative END),
              '') AS note,
       $now::TIMESTAMP AS computed_at
FROM projection_stage s
LEFT JOIN projection_prices p ON p.price_id = s.price_id
-- Lines hold only priceable quantities (>= 0): a negative counter finds none.
LEFT JOIN projection_line_costs d ON d.price_id = s.price_id AND d.unit_scale = s.unit_scale AND d.q9 = s.v9
LEFT JOIN projection_line_costs f ON f.price_id = s.price_id AND f.unit_scale = s.unit_scale AND f.q9 = s.projected9;
