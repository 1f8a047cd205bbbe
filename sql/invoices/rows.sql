-- The counters (TEMP invoice_counters) to compare in Python: those with a
-- subscription item (their invoice line and price), and those without one
-- whose meter has a metered price (TEMP meter_prices) to value the usage.
-- pending: an intent of the counter is on its way; last_acked_at: its latest acknowledgement.
SELECT c.tenant_id, c.customer_ref, c.metric, c.period_start, c.period_end, c.local_total, c.account,
       c.shadow, c.event_name, c.source, c.subscription_item, c.price, c.price_account,
       EXISTS (SELECT 1 FROM stripe_pushes p WHERE p.status = 'pending' AND p.tenant_id = c.tenant_id
               AND p.customer_ref = c.customer_ref AND p.metric = c.metric AND p.period_start = c.period_start)
           AS pending,
       (SELECT max(acked_at) FROM stripe_pushes p WHERE p.acked_at IS NOT NULL AND p.tenant_id = c.tenant_id
        AND p.customer_ref = c.customer_ref AND p.metric = c.metric AND p.period_start = c.period_start)
           AS last_acked_at
FROM invoice_counters c
WHERE c.source = 'stripe'
   OR EXISTS (SELECT 1 FROM meter_prices m WHERE m.account = c.account AND m.event_name = c.event_name)
ORDER BY c.tenant_id, c.customer_ref, c.metric, c.period_start
