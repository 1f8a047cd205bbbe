-- Open carry-forwards (changes to closed periods, policy carry_forward) that
-- no pending intent carries yet.
SELECT a.tenant_id, a.metric, a.customer_ref, a.origin_period, a.aggregation, a.delta, a.recorded_at, a.run_id
FROM period_adjustments a
WHERE a.status = 'open'
  AND NOT EXISTS (
      SELECT 1
      FROM stripe_push_adjustments l
      JOIN stripe_pushes p ON p.identifier = l.identifier AND p.status = 'pending'
      WHERE l.tenant_id = a.tenant_id AND l.metric = a.metric AND l.customer_ref = a.customer_ref
        AND l.origin_period = a.origin_period AND l.recorded_at = a.recorded_at AND l.run_id = a.run_id)
ORDER BY a.origin_period, a.tenant_id, a.metric, a.customer_ref, a.recorded_at
