-- The price terms handed over through Arrow (DECIMAL(38, 0), Arrow has no
-- 128-bit integer) as the HUGEINTs line_costs.sql computes with.
CREATE OR REPLACE TEMP TABLE projection_prices AS
SELECT price_id, currency, step, div::HUGEINT AS div, half::HUGEINT AS half, min_s::HUGEINT AS min_s,
       max_s::HUGEINT AS max_s, pkg_den::HUGEINT AS pkg_den, pkg_size9::HUGEINT AS pkg_size9, pkg_up,
       pkg_limit::HUGEINT AS pkg_limit, n9_limit::HUGEINT AS n9_limit
FROM projection_prices_in;

CREATE OR REPLACE TEMP TABLE projection_bands AS
SELECT price_id, lo9::HUGEINT AS lo9, hi9::HUGEINT AS hi9, base_s::HUGEINT AS base_s, unit_s::HUGEINT AS unit_s
FROM projection_bands_in;
