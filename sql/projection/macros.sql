-- Session macros of the cost projection.

-- floor(n / d) for HUGEINT n >= 0 and d > 0, exactly. DuckDB divides HUGEINTs
-- bit by bit (~1 µs); when the quotient is below 1e15 the quotient of the two
-- doubles is within 1 of the exact one (relative error < 1e-15), which one
-- multiplication settles; larger quotients divide exactly.
CREATE OR REPLACE TEMP MACRO sm_settle_div(n, d, q) AS
    q + CASE WHEN n - q * d < 0 THEN -1 WHEN n - q * d >= d THEN 1 ELSE 0 END;

CREATE OR REPLACE TEMP MACRO sm_floor_div(n, d) AS
    CASE WHEN n::DOUBLE / d::DOUBLE < 1e15 THEN sm_settle_div(n, d, floor(n::DOUBLE / d::DOUBLE)::HUGEINT)
         ELSE n // d END;

-- A counter is costed when it has a price and no negative usage (to date or
-- projected); v9 and projected9 in 1e-9 units.
CREATE OR REPLACE TEMP MACRO sm_priceable(price_id, v9, projected9) AS
    price_id IS NOT NULL AND v9 >= 0 AND coalesce(projected9 >= 0, true);
