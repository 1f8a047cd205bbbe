-- The (mode, account, meter event name) whose error reports are pulled:
-- every one an intent was sent to since $since (Stripe lists v2 events of
-- the last 30 days), with whether it goes through the test-mode key.
SELECT DISTINCT mode, account, shadow, event_name
FROM stripe_pushes
WHERE sent_at IS NOT NULL AND sent_at >= $since
ORDER BY ALL
