-- Closes the open verifications of one counter: status $status (verified:
-- Stripe's settled total matched; short: it was below the local total).
UPDATE stripe_push_verifications v
SET status = $status, checked_at = $now
FROM stripe_pushes p
WHERE v.identifier = p.identifier AND v.status = 'open'
  AND p.account = $account AND p.mode = $mode AND p.tenant_id = $tenant_id AND p.customer_ref = $customer_ref
  AND p.metric = $metric AND p.period_start = $period_start
