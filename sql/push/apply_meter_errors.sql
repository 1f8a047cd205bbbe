-- Stripe's meter error reports, applied in one transaction, from the TEMP
-- tables new_meter_errors (rows of stripe_meter_errors not stored yet) and
-- error_meters(mode, account, meter, event_name). Param: $now.
--
-- An intent named in a report was dropped by Stripe although it answered
-- 200: it becomes rejected_by_stripe (last_error: code and message), and if
-- it was acknowledged its amount stops counting as pushed (pushed_total /
-- carried_in go down, a rejected latest value is forgotten, its carried
-- adjustments are open again), so the next plan pushes the counter again.
INSERT INTO stripe_meter_errors SELECT * FROM new_meter_errors;

CREATE OR REPLACE TEMP TABLE rejected_now AS
SELECT p.*, e.code, e.message
FROM stripe_pushes p
JOIN (SELECT identifier, mode, account, any_value(code) AS code, any_value(message) AS message
      FROM new_meter_errors WHERE identifier IS NOT NULL GROUP BY ALL) e
  ON e.identifier = p.identifier AND e.mode = p.mode AND e.account = p.account
WHERE p.status IN ('acknowledged', 'pending');

UPDATE stripe_push_state s
SET pushed_total = s.pushed_total - r.delta_sum,
    carried_in = s.carried_in - r.carry_sum,
    last_value = CASE WHEN r.value_ts IS NOT NULL AND r.value_ts = s.last_ts THEN NULL ELSE s.last_value END,
    updated_at = $now
FROM (SELECT account, mode, tenant_id, customer_ref, metric, period_start,
             coalesce(sum(value) FILTER (WHERE kind = 'delta'), 0) AS delta_sum,
             coalesce(sum(value) FILTER (WHERE kind = 'carry_forward'), 0) AS carry_sum,
             max(event_ts) FILTER (WHERE kind = 'value') AS value_ts
      FROM rejected_now WHERE status = 'acknowledged' GROUP BY ALL) r
WHERE s.account = r.account AND s.mode = r.mode AND s.tenant_id = r.tenant_id AND s.customer_ref = r.customer_ref
  AND s.metric = r.metric AND s.period_start = r.period_start;

UPDATE period_adjustments a
SET status = 'open', target_period = NULL
FROM (SELECT l.* FROM stripe_push_adjustments l JOIN rejected_now r USING (identifier)
      WHERE r.status = 'acknowledged') n
WHERE a.status = 'pushed' AND a.tenant_id = n.tenant_id AND a.metric = n.metric AND a.customer_ref = n.customer_ref
  AND a.origin_period = n.origin_period AND a.recorded_at = n.recorded_at AND a.run_id = n.run_id;

UPDATE stripe_pushes p
SET status = 'rejected_by_stripe', last_error = r.code || ': ' || coalesce(r.message, ''),
    version = nextval('stripe_pushes_version')
FROM rejected_now r
WHERE p.identifier = r.identifier;

-- Failures a report counted but did not name: the acknowledged intents of
-- that meter sent in the validation window are verified against settled
-- summaries instead of trusting their 200s.
INSERT INTO stripe_push_verifications
SELECT DISTINCT p.identifier, e.event_id, e.code, 'open', $now, NULL::TIMESTAMP
FROM new_meter_errors e
JOIN error_meters m ON m.mode = e.mode AND m.account = e.account AND m.meter = e.meter
JOIN stripe_pushes p ON p.mode = e.mode AND p.account = e.account AND p.event_name = m.event_name
WHERE e.identifier IS NULL AND p.status = 'acknowledged'
  AND coalesce(p.acked_at, p.sent_at) >= e.validation_start AND p.sent_at <= e.validation_end
  AND NOT EXISTS (SELECT 1 FROM stripe_push_verifications v WHERE v.identifier = p.identifier AND v.status = 'open');
