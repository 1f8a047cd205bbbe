-- Days counted before daily_usage had versions get one, so the snapshot
-- publishes them (analytics/units_daily_usage.sql).
INSERT INTO daily_usage_days
SELECT day, nextval('daily_usage_version')
FROM (SELECT DISTINCT day FROM daily_usage)
WHERE day NOT IN (SELECT day FROM daily_usage_days);
