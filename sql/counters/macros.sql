-- Session macros of the counter recomputation.

-- Whether sum(q) over DECIMAL(38,9) values cannot be represented as
-- DECIMAL(38,9) (|sum| >= 1e29), computed exactly: integer parts and
-- fractional parts (in 1e-9 units) are summed as HUGEINT, which cannot
-- overflow for any realistic row count. Integer sums of 1.5e29 or more are
-- overflows whatever the fractions add (and would overflow the scaling).
CREATE OR REPLACE TEMP MACRO sm_sum_overflows(q) AS
    CASE WHEN abs(sum(trunc(q)::HUGEINT)) >= 150000000000000000000000000000 THEN true
         ELSE abs(sum(trunc(q)::HUGEINT) * 1000000000 + sum(((q - trunc(q)) * 1000000000)::HUGEINT))
              >= 100000000000000000000000000000000000000 END;
