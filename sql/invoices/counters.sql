-- Adds the mapped counters of one period's reconciliation frame (TEMP
-- recon_frame, reconcile/frame.sql: local totals in the meter's units, the
-- total at close for a closed period plus what was carried in) to TEMP
-- invoice_counters, with what the invoice side needs of them.
INSERT INTO invoice_counters
SELECT f.tenant_id, f.customer_ref, f.metric, f.period_start, f.period_end, f.local_total, f.account, f.shadow,
       f.event_name, coalesce(b.source, 'calendar') AS source, b.subscription_item, b.price,
       coalesce(b.account, f.account) AS price_account
FROM recon_frame f
LEFT JOIN billing_periods b USING (tenant_id, metric, customer_ref, period_start)
WHERE f.stripe_customer IS NOT NULL
