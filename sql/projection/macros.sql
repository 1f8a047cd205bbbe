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
