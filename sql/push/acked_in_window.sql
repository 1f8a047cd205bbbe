-- What Stripe should hold for one (mode, account, customer, meter) over
-- [$start_ts, $end_ts) from our acknowledged pushes alone: their sum, and
-- the value of the latest by event timestamp (for `last` meters), and when
-- the latest of them was acknowledged (summaries lag acknowledgements).
SELECT coalesce(sum(value), 0)::BIGINT AS acked_sum, arg_max(value, event_ts) AS acked_last,
       max(acked_at) AS last_acked_at
FROM stripe_pushes
WHERE status = 'acknowledged' AND mode = $mode AND account = $account AND stripe_customer = $stripe_customer
  AND event_name = $event_name AND event_ts >= $start_ts AND event_ts < $end_ts
