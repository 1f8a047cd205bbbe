-- Replaces one period's cost_projection rows with `new_projection` (TEMP,
-- same columns, built by the cost_projection asset). Run inside one transaction.
-- Params: $start (period_start).
DELETE FROM cost_projection WHERE period_start = $start::TIMESTAMP;

INSERT INTO cost_projection BY NAME
SELECT * FROM new_projection WHERE period_start = $start::TIMESTAMP;
