-- Steps 3/4 of the push protocol, in one transaction, from the TEMP table
-- push_outcomes(identifier, outcome, attempts, sent_at, acked_at, note):
-- outcome acknowledged (Stripe accepted the event or already had it),
-- failed (Stripe refused it for good), refused_meter_config /
-- refused_unknown_customer (checked before sending, never sent) or pending
-- (not delivered yet: sent again, with the same identifier, next run).
-- Only intents still pending move, so an outcome never counts twice.
CREATE OR REPLACE TEMP TABLE acked_now AS
SELECT p.*, o.acked_at AS ack_time
FROM stripe_pushes p JOIN push_outcomes o USING (identifier)
WHERE p.status = 'pending' AND o.outcome = 'acknowledged';

UPDATE stripe_push_state s
SET pushed_total = s.pushed_total + a.delta_sum,
    carried_in = s.carried_in + a.carry_sum,
    last_value = CASE WHEN a.value_ts IS NOT NULL AND a.value_ts >= coalesce(s.last_ts, a.value_ts)
                      THEN a.latest_value ELSE s.last_value END,
    last_ts = CASE WHEN a.value_ts IS NOT NULL THEN greatest(coalesce(s.last_ts, a.value_ts), a.value_ts)
                   ELSE s.last_ts END,
    updated_at = a.ack_time
FROM (SELECT account, mode, tenant_id, customer_ref, metric, period_start,
             coalesce(sum(value) FILTER (WHERE kind = 'delta'), 0) AS delta_sum,
             coalesce(sum(value) FILTER (WHERE kind = 'carry_forward'), 0) AS carry_sum,
             arg_max(value, event_ts) FILTER (WHERE kind = 'value') AS latest_value,
             max(event_ts) FILTER (WHERE kind = 'value') AS value_ts,
             max(ack_time) AS ack_time
      FROM acked_now GROUP BY ALL) a
WHERE s.account = a.account AND s.mode = a.mode AND s.tenant_id = a.tenant_id AND s.customer_ref = a.customer_ref
  AND s.metric = a.metric AND s.period_start = a.period_start;

-- The carried adjustments are pushed exactly when their intent is acknowledged.
UPDATE period_adjustments a
SET status = 'pushed', target_period = n.period_start
FROM (SELECT l.*, k.period_start FROM stripe_push_adjustments l JOIN acked_now k USING (identifier)) n
WHERE a.status = 'open' AND a.tenant_id = n.tenant_id AND a.metric = n.metric AND a.customer_ref = n.customer_ref
  AND a.origin_period = n.origin_period AND a.recorded_at = n.recorded_at AND a.run_id = n.run_id;

UPDATE stripe_pushes p
SET status = CASE WHEN o.outcome IN ('acknowledged', 'failed', 'refused_meter_config', 'refused_unknown_customer')
                  THEN o.outcome ELSE 'pending' END,
    attempts = p.attempts + o.attempts,
    sent_at = coalesce(p.sent_at, o.sent_at),
    acked_at = CASE WHEN o.outcome = 'acknowledged' THEN o.acked_at ELSE p.acked_at END,
    last_error = o.note,
    version = nextval('stripe_pushes_version')
FROM push_outcomes o
WHERE p.identifier = o.identifier AND p.status = 'pending';
