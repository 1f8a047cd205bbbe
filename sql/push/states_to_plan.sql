-- The push state a plan reads, of the periods $periods (the pushed ones,
-- $pushed, and the open ones, where carry-forwards go): of the counters it
-- plans (TEMP push_plan), of the vanished ones (a pushed period's record
-- with no row in TEMP push_counters) and of the counters with an open
-- carry-forward. The counters in step need none.
SELECT s.account, s.mode, s.tenant_id, s.customer_ref, s.metric, s.period_start, s.stripe_customer, s.event_name,
       s.pushed_total, s.carried_in, s.last_value, s.last_ts, s.revision
FROM stripe_push_state s
WHERE s.period_start IN (SELECT unnest($periods::TIMESTAMP[]))
  AND (EXISTS (SELECT 1 FROM push_plan p WHERE p.mapped AND p.tenant_id = s.tenant_id AND p.metric = s.metric
               AND p.customer_ref = s.customer_ref AND p.period_start = s.period_start)
       OR s.period_start IN (SELECT unnest($pushed::TIMESTAMP[])) AND NOT EXISTS (SELECT 1 FROM push_counters c WHERE c.tenant_id = s.tenant_id AND c.metric = s.metric
                      AND c.customer_ref = s.customer_ref AND c.period_start = s.period_start)
       OR EXISTS (SELECT 1 FROM period_adjustments a WHERE a.status = 'open' AND a.tenant_id = s.tenant_id
                  AND a.metric = s.metric AND a.customer_ref = s.customer_ref))
