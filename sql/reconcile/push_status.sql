-- Per counter of the period $period_start: what the outbox knows about its
-- pushes. pending: intents not acknowledged yet; last_acked_at: the latest
-- acknowledgement (summaries may lag it); latest_status: status of the
-- binding intent with the greatest revision, or of a rejected / refused one
-- (failed = Stripe refused it, rejected_by_stripe = Stripe dropped it after
-- its 200, refused_* = checked before sending and never sent, and nothing
-- later replaced it); too_old: the latest plan was skipped_too_old.
SELECT account, mode, tenant_id, customer_ref, metric,
       count(*) FILTER (WHERE status = 'pending') AS pending,
       max(acked_at) FILTER (WHERE status = 'acknowledged') AS last_acked_at,
       arg_max(status, revision) FILTER (WHERE status IN ('pending', 'acknowledged', 'failed', 'rejected_by_stripe',
                                                          'refused_meter_config', 'refused_unknown_customer'))
           AS latest_status,
       arg_max(last_error, revision) FILTER (WHERE status IN ('failed', 'rejected_by_stripe', 'refused_meter_config',
                                                              'refused_unknown_customer')) AS last_error,
       arg_max(last_error, revision) FILTER (WHERE status = 'rejected_by_stripe') AS rejected_error,
       count(*) FILTER (WHERE status = 'skipped_too_old') > 0 AS too_old,
       count(*) FILTER (WHERE status = 'planned') > 0 AS planned
FROM stripe_pushes
WHERE period_start = $period_start
GROUP BY ALL
