-- Pending intents per counter: values already on their way to Stripe, which
-- a new plan must not plan again.
SELECT account, mode, tenant_id, customer_ref, metric, period_start,
       coalesce(sum(value) FILTER (WHERE kind = 'delta'), 0)::BIGINT AS delta_sum,
       coalesce(sum(value) FILTER (WHERE kind = 'carry_forward'), 0)::BIGINT AS carry_sum,
       arg_max(value, revision) FILTER (WHERE kind = 'value') AS latest_value,
       max(event_ts) AS max_ts,
       max(revision) AS max_revision
FROM stripe_pushes
WHERE status = 'pending'
GROUP BY ALL
