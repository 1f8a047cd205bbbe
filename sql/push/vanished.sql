-- Counters of the periods $periods with a push record but no row in TEMP
-- {{counters}} any more (they count zero now: push/outbox.add_vanished).
SELECT DISTINCT s.tenant_id, s.metric, s.customer_ref, s.period_start
FROM stripe_push_state s
WHERE s.period_start IN (SELECT unnest($periods::TIMESTAMP[]))
  AND NOT EXISTS (SELECT 1 FROM {{counters}} c
                  WHERE c.tenant_id = s.tenant_id AND c.metric = s.metric AND c.customer_ref = s.customer_ref
                    AND c.period_start = s.period_start)
ORDER BY s.period_start, s.tenant_id, s.metric, s.customer_ref
