-- The latest earlier read of one counter's Stripe total taken at or before
-- $before (i.e. at least the settle delay ago).
SELECT stripe_total, read_at
FROM stripe_summary_reads
WHERE account = $account AND mode = $mode AND tenant_id = $tenant_id AND customer_ref = $customer_ref
  AND metric = $metric AND period_start = $period_start AND read_at <= $before
ORDER BY read_at DESC
LIMIT 1
