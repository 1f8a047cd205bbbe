-- The distinct starts of the billing periods a recomputation touched (TEMP target_periods).
SELECT DISTINCT period_start FROM target_periods ORDER BY 1
