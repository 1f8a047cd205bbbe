-- The cost of every line of `projection_lines` (price_id; unit_scale, 0 for a
-- config price; q9: the quantity in 1e-9 units, >= 0) under the
-- terms of `projection_prices` and `projection_bands` (built by
-- stripemeter_assets/projection/price_terms.py), exactly as the pricing
-- library's `price_line`: the units billed (floor(unit_scale × q) for a Stripe
-- price), the packages counted (package prices), the band's base + n × unit,
-- the minimum and maximum charges, rounded half up to the currency's minor
-- units. `cost` is NULL where a number could leave HUGEINT's range (past the
-- limits): Python prices those lines.
CREATE OR REPLACE TEMP TABLE projection_line_costs AS
WITH billed AS (
    SELECT l.price_id, l.unit_scale, l.q9,
           CASE WHEN l.unit_scale = 0 THEN l.q9
                -- Within HUGEINT's range for any realistic quantity (< 1e20) and scale (< 1e9).
                WHEN l.q9 < 100000000000000000000000000000 AND l.unit_scale < 1000000000
                     THEN sm_floor_div(l.q9 * l.unit_scale, 1000000000) * 1000000000
           END AS u9
    FROM projection_lines l
), packaged AS (
    SELECT b.price_id, b.unit_scale, b.q9, b.u9, p.pkg_size9, p.pkg_up,
           CASE WHEN b.u9 <= p.pkg_limit THEN b.u9 * p.pkg_den END AS pkg_units,
           p.n9_limit, p.min_s, p.max_s, p.half, p.div, p.step
    FROM billed b JOIN projection_prices p USING (price_id)
), counted AS (
    SELECT price_id, unit_scale, q9, n9_limit, min_s, max_s, half, div, step,
           CASE WHEN pkg_size9 IS NULL THEN u9
                ELSE (packages + CASE WHEN pkg_up AND pkg_units > packages * pkg_size9 THEN 1 ELSE 0 END)
                     * 1000000000
           END AS n9
    FROM (SELECT *, sm_floor_div(pkg_units, pkg_size9) AS packages FROM packaged)
), charged AS (
    -- No band holds n = 0: nothing is charged before the minimum.
    SELECT c.price_id, c.unit_scale, c.q9, c.min_s, c.max_s, c.half, c.div, c.step,
           CASE WHEN c.n9 <= c.n9_limit THEN coalesce(b.base_s + c.n9 * b.unit_s, 0) END AS amount
    FROM counted c
    LEFT JOIN projection_bands b ON b.price_id = c.price_id AND c.n9 > b.lo9 AND c.n9 <= b.hi9
), limited AS (
    -- (least and greatest skip NULLs: a line SQL cannot price must stay NULL, not take the minimum)
    SELECT price_id, unit_scale, q9, div, step,
           CASE WHEN amount IS NOT NULL THEN least(greatest(amount, min_s), max_s) + half END AS rounded_up
    FROM charged
)
SELECT price_id, unit_scale, q9,
       (sm_floor_div(rounded_up, div)::DECIMAL(38, 0) * step)::DECIMAL(38, 4) AS cost
FROM limited
