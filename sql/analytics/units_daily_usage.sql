-- daily_usage's snapshot units: (unit, first day, last day, signature), the
-- signature being the greatest version of its days (daily_usage_days: every
-- recount of a day bumps it). Needs analytics/unit_macros.sql. Param: $recent.
SELECT sm_unit(day, $recent::DATE) AS unit, min(sm_unit_first(day, $recent::DATE)) AS first,
       max(sm_unit_last(day, $recent::DATE)) AS last, max(version)::VARCHAR AS signature
FROM daily_usage_days
GROUP BY 1
