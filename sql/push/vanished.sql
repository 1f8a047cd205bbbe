-- Push records of the periods $periods whose counter has no row in TEMP
-- {{counters}} any more (it counts zero now: push/planner.vanished_counter).
SELECT DISTINCT s.account, s.mode, s.tenant_id, s.customer_ref, s.metric, s.period_start
FROM stripe_push_state s
WHERE s.period_start IN (SELECT unnest($periods::TIMESTAMP[]))
  AND NOT EXISTS (SELECT 1 FROM {{counters}} c
                  WHERE c.tenant_id = s.tenant_id AND c.metric = s.metric AND c.customer_ref = s.customer_ref
                    AND c.period_start = s.period_start)
ORDER BY s.period_start, s.tenant_id, s.metric, s.customer_ref, s.account
