-- What the plan in TEMP push_plan did, for the push report: intents by
-- status and kind, and the counters and carried adjustments it left.
SELECT count(*) FILTER (action = 'intent' AND status = 'planned') AS planned,
       count(*) FILTER (action = 'intent' AND status = 'refused_shadow') AS refused_shadow,
       count(*) FILTER (action = 'intent' AND status = 'skipped_too_old') AS skipped_too_old,
       count(*) FILTER (action = 'intent' AND kind = 'carry_forward') AS carry_forwards,
       count(*) FILTER (action = 'deferred') AS deferred,
       coalesce(sum(adjustments) FILTER (action = 'carry_unmapped'), 0)::BIGINT AS carry_unmapped,
       coalesce(sum(adjustments) FILTER (action = 'carry_not_summable'), 0)::BIGINT AS carry_not_summable
FROM push_plan
