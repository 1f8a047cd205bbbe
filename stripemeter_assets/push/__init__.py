"""The Stripe push (DESIGN §4): config mapping, planner, outbox, sender.

    mapping   config `stripe:` → meters, customers, accounts, shadow
    planner   counters + push state → intents (pure)
    outbox    stripe_pushes / stripe_push_state in DuckDB (sql/stripe/)
    client    keys from the environment, scrubbing, the SDK gateway
    pacing    token buckets under 80 % of Stripe's limits, backoff, breaker
    sender    sends intents: identifier = idempotency key, retries
    run       one push run in protocol order
"""
