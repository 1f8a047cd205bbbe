-- Step 1 of the push protocol: record a plan before anything is sent. Run in
-- one transaction, from the TEMP tables new_intents, new_links (adjustments
-- carried by new carry_forward intents) and settled_adjustments (open
-- adjustments worth less than one scaled unit: nothing to send).
-- Params: $periods (TIMESTAMP[], the periods planned), $now.

-- Non-binding intents (planned, skipped_too_old, refused_shadow, and the
-- refused_meter_config / refused_unknown_customer ones, never sent) only
-- ever describe the latest plan: replace those of what is being planned again.
CREATE OR REPLACE TEMP TABLE replaced_intents AS
SELECT identifier FROM stripe_pushes
WHERE status IN ('planned', 'skipped_too_old', 'refused_shadow', 'refused_meter_config', 'refused_unknown_customer')
  AND (kind = 'carry_forward'
       OR period_start IN (SELECT unnest($periods::TIMESTAMP[]))
       OR identifier IN (SELECT identifier FROM new_intents));

DELETE FROM stripe_push_adjustments WHERE identifier IN (SELECT identifier FROM replaced_intents);

DELETE FROM stripe_pushes WHERE identifier IN (SELECT identifier FROM replaced_intents);

INSERT INTO stripe_pushes (identifier, account, mode, shadow, tenant_id, customer_ref, stripe_customer, metric,
                           event_name, meter_id, meter_formula, unit_scale, period_start, period_end, revision, kind,
                           origin_period, value, target_total, event_ts, status, attempts, last_error, run_id,
                           created_at, sent_at, acked_at, version)
SELECT identifier, account, mode, shadow, tenant_id, customer_ref, stripe_customer, metric, event_name, meter_id,
       meter_formula, unit_scale, period_start, period_end, revision, kind, origin_period, value, target_total,
       event_ts, status, 0, NULL, run_id, created_at, NULL, NULL, nextval('stripe_pushes_version')
FROM new_intents;

INSERT INTO stripe_push_adjustments SELECT * FROM new_links;

-- A binding intent consumes its revision for good.
UPDATE stripe_push_state s
SET revision = greatest(s.revision, n.revision), stripe_customer = n.stripe_customer, event_name = n.event_name,
    updated_at = $now
FROM (SELECT account, mode, tenant_id, customer_ref, metric, period_start, max(revision) AS revision,
             arg_max(stripe_customer, revision) AS stripe_customer, arg_max(event_name, revision) AS event_name
      FROM new_intents WHERE status = 'pending' GROUP BY ALL) n
WHERE s.account = n.account AND s.mode = n.mode AND s.tenant_id = n.tenant_id AND s.customer_ref = n.customer_ref
  AND s.metric = n.metric AND s.period_start = n.period_start;

INSERT INTO stripe_push_state (account, mode, tenant_id, customer_ref, metric, period_start, stripe_customer,
                               event_name, pushed_total, carried_in, last_value, last_ts, revision, updated_at)
SELECT account, mode, tenant_id, customer_ref, metric, period_start, arg_max(stripe_customer, revision),
       arg_max(event_name, revision), 0, 0, NULL, NULL, max(revision), $now
FROM new_intents n
WHERE status = 'pending'
  AND NOT EXISTS (SELECT 1 FROM stripe_push_state s
                  WHERE s.account = n.account AND s.mode = n.mode AND s.tenant_id = n.tenant_id
                    AND s.customer_ref = n.customer_ref AND s.metric = n.metric AND s.period_start = n.period_start)
GROUP BY account, mode, tenant_id, customer_ref, metric, period_start;

UPDATE period_adjustments a
SET status = 'pushed', target_period = s.target_period
FROM settled_adjustments s
WHERE a.status = 'open' AND a.tenant_id = s.tenant_id AND a.metric = s.metric AND a.customer_ref = s.customer_ref
  AND a.origin_period = s.origin_period AND a.recorded_at = s.recorded_at AND a.run_id = s.run_id;
