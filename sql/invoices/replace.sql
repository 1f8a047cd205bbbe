-- Replaces the invoice reconciliation of the periods $periods (TIMESTAMP[])
-- with the rows compared in Python (`new_invoice_rows`, registered by
-- invoices/run.py) and, from TEMP invoice_counters, the counters with no
-- subscription item and no metered price to value them: status
-- no_subscription (cause $no_price_cause), or not_read when their account's
-- Stripe was not read (`unread_accounts`, with the cause). Run inside one
-- transaction.
DELETE FROM invoice_reconciliation WHERE period_start IN (SELECT unnest($periods::TIMESTAMP[]));

INSERT INTO invoice_reconciliation BY NAME SELECT * FROM new_invoice_rows;

INSERT INTO invoice_reconciliation BY NAME
SELECT c.tenant_id, c.customer_ref, c.metric, c.subscription_item, c.period_start, c.period_end, c.local_total,
       0 AS money_at_stake, CASE WHEN u.account IS NULL THEN 'no_subscription' ELSE 'not_read' END AS status,
       coalesce(u.cause, $no_price_cause) AS cause, $now AS checked_at, $run_id AS run_id
FROM invoice_counters c
LEFT JOIN unread_accounts u ON u.shadow = c.shadow AND u.account = c.account
WHERE c.source <> 'stripe'
  AND NOT EXISTS (SELECT 1 FROM meter_prices m WHERE m.account = c.account AND m.event_name = c.event_name);
