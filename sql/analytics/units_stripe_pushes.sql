-- stripe_pushes' snapshot units, by the day intents were created (a push
-- adds rows to today's unit; outcomes and error reports update recent ones):
-- (unit, first day, last day, signature), the signature being its rows'
-- count and greatest version (every write of a row bumps it; a delete
-- changes the count). Days first, so the unit is worked out per day, not per
-- row. Needs analytics/unit_macros.sql. Param: $recent.
SELECT sm_unit(day, $recent::DATE) AS unit, min(sm_unit_first(day, $recent::DATE)) AS first,
       max(sm_unit_last(day, $recent::DATE)) AS last, sum(n) || ':' || coalesce(max(v), 0) AS signature
FROM (SELECT created_at::DATE AS day, count(*) AS n, max(version) AS v FROM stripe_pushes GROUP BY 1)
GROUP BY 1
