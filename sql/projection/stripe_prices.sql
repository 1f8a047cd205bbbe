-- The Stripe prices of the subscription items of the billing periods starting
-- at $starts, one row per (account, price, metric), to parse once per price.
SELECT DISTINCT b.account, b.price, b.metric, p.body
FROM billing_periods b
JOIN billing_prices p ON p.price = b.price AND p.account = b.account
WHERE b.source = 'stripe' AND b.period_start IN (SELECT unnest($starts::TIMESTAMP[]))
