-- stripe_pushes' snapshot units, by the day intents were created (a push
-- adds rows to today's unit; outcomes and error reports update recent ones):
-- (unit, first day, last day, signature), the signature being its rows'
-- count and greatest version (every write of a row bumps it; a delete
-- changes the count). Needs analytics/unit_macros.sql. Param: $recent.
SELECT sm_unit(created_at::DATE, $recent::DATE) AS unit, min(sm_unit_first(created_at::DATE, $recent::DATE)) AS first,
       max(sm_unit_last(created_at::DATE, $recent::DATE)) AS last,
       count(*) || ':' || coalesce(max(version), 0) AS signature
FROM stripe_pushes
GROUP BY 1
