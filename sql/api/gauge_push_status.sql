-- /metrics: Stripe push intents by status.
SELECT status, count(*) FROM stripe_pushes GROUP BY status
