-- Stripe push (DESIGN §4): the outbox of push intents, the per-counter push
-- state, and which closed-period adjustments a carry-forward intent carries.
-- Keys are never stored anywhere here.
--
-- No PRIMARY KEYs on purpose: identifiers are unique by construction
-- (sha256 over the counter and its ever-growing revision) and DuckDB's
-- index checks reject a delete + re-insert of one key in one transaction,
-- which replacing a `planned` intent needs.

-- One row per push intent. `identifier` is both the meter event identifier
-- and the idempotency key: 'smp_' || sha256 hex of
-- account ␟ mode ␟ tenant ␟ customer_ref ␟ metric ␟ period_start ␟ revision.
-- status: planned (dry-run, replaced by the next plan) | pending (written,
--   maybe sent, not yet acknowledged: re-sent with the same identifier) |
--   acknowledged (Stripe accepted it, or already had it) | failed (Stripe
--   refused it for good, e.g. unknown customer, a later plan re-pushes) |
--   skipped_too_old (the period is older than Stripe accepts, reported) |
--   refused_shadow (shadow mapping without a test-mode key, fail closed) |
--   refused_meter_config (the Stripe meter is missing, inactive, has the wrong
--   formula or an event_time_window: never sent) | refused_unknown_customer
--   (the Stripe customer does not exist: never sent) | rejected_by_stripe
--   (acknowledged with 200, then named in one of Stripe's meter error
--   reports: no longer counted as pushed, last_error holds the code).
CREATE TABLE IF NOT EXISTS stripe_pushes (
    identifier      VARCHAR NOT NULL,
    account         VARCHAR NOT NULL,   -- acct_… (Connect) or 'platform'
    mode            VARCHAR NOT NULL,   -- live | test
    shadow          BOOLEAN NOT NULL,   -- sent with STRIPE_TEST_API_KEY only
    tenant_id       VARCHAR NOT NULL,
    customer_ref    VARCHAR NOT NULL,
    stripe_customer VARCHAR NOT NULL,   -- cus_…
    metric          VARCHAR NOT NULL,
    event_name      VARCHAR NOT NULL,
    meter_id        VARCHAR,            -- from the mapping, when given
    meter_formula   VARCHAR NOT NULL,   -- sum (sum/count counters) | last (max/last counters)
    unit_scale      BIGINT NOT NULL,
    period_start    TIMESTAMP NOT NULL, -- the period the event is billed in
    period_end      TIMESTAMP NOT NULL,
    revision        BIGINT NOT NULL,    -- per counter, only grows
    kind            VARCHAR NOT NULL,   -- delta | value | carry_forward
    origin_period   TIMESTAMP,          -- carry_forward: the closed period the change belongs to
    value           BIGINT NOT NULL,    -- scaled units sent (signed)
    target_total    BIGINT NOT NULL,    -- delta: pushed_total after this push, value: the value
    event_ts        BIGINT NOT NULL,    -- meter event timestamp, epoch seconds
    status          VARCHAR NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      VARCHAR,            -- scrubbed of key material
    run_id          VARCHAR,
    created_at      TIMESTAMP NOT NULL,
    sent_at         TIMESTAMP,          -- first attempt
    acked_at        TIMESTAMP,
    version         BIGINT              -- from stripe_pushes_version at every write of the row (analyst snapshot)
);
CREATE SEQUENCE IF NOT EXISTS stripe_pushes_version;
ALTER TABLE stripe_pushes ADD COLUMN IF NOT EXISTS version BIGINT;

-- Per counter (account, mode, tenant, customer, metric, period): what Stripe
-- has acknowledged. pushed_total: Σ acknowledged `delta` pushes (scaled),
-- carried_in: Σ acknowledged carry-forwards into this period (from closed
-- periods), last_value / last_ts: the latest acknowledged `value` push,
-- revision: the greatest revision of any intent ever made binding.
CREATE TABLE IF NOT EXISTS stripe_push_state (
    account         VARCHAR NOT NULL,
    mode            VARCHAR NOT NULL,
    tenant_id       VARCHAR NOT NULL,
    customer_ref    VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    period_start    TIMESTAMP NOT NULL,
    stripe_customer VARCHAR NOT NULL,
    event_name      VARCHAR NOT NULL,
    pushed_total    BIGINT NOT NULL DEFAULT 0,
    carried_in      BIGINT NOT NULL DEFAULT 0,
    last_value      BIGINT,
    last_ts         BIGINT,
    revision        BIGINT NOT NULL DEFAULT 0,
    updated_at      TIMESTAMP NOT NULL
);

-- Which period_adjustments rows a carry_forward intent carries, they are
-- marked `pushed` in the transaction that acknowledges the intent.
CREATE TABLE IF NOT EXISTS stripe_push_adjustments (
    identifier      VARCHAR NOT NULL,
    tenant_id       VARCHAR NOT NULL,
    metric          VARCHAR NOT NULL,
    customer_ref    VARCHAR NOT NULL,
    origin_period   TIMESTAMP NOT NULL,
    recorded_at     TIMESTAMP NOT NULL,
    run_id          VARCHAR NOT NULL
);
