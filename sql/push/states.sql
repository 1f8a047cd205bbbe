-- Push state of every counter of the periods $periods (TIMESTAMP[]).
SELECT account, mode, tenant_id, customer_ref, metric, period_start, stripe_customer, event_name,
       pushed_total, carried_in, last_value, last_ts, revision
FROM stripe_push_state
WHERE period_start IN (SELECT unnest($periods::TIMESTAMP[]))
