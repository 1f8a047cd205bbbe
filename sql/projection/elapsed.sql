-- The elapsed fraction per period start (of its earliest-ending counters).
SELECT period_start, arg_min(fraction, period_end) AS fraction
FROM projection_stage
GROUP BY period_start
ORDER BY period_start
