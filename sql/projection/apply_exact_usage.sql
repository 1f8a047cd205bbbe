-- Fills in the projections Python computed (TEMP projection_exact_usage).
UPDATE projection_stage AS s SET projected9 = e.projected9::HUGEINT, too_large = e.too_large
FROM projection_exact_usage e
WHERE s.rowid = e.rid;
