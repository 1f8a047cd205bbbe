-- The run's worst rows: money at stake first, then any row at risk.
SELECT tenant_id, customer_ref, metric, subscription_item, period_start, period_end, local_total, local_amount,
       stripe_quantity, stripe_amount, currency, invoice, invoice_status, money_at_stake, status, cause
FROM invoice_reconciliation
WHERE run_id = $run_id AND (money_at_stake > 0 OR status IN (SELECT unnest($at_risk::VARCHAR[])))
ORDER BY money_at_stake DESC, tenant_id, customer_ref, metric
LIMIT $limit
