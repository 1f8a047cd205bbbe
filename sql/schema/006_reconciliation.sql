-- Pre-invoice reconciliation (asset `reconciliation_report`, DESIGN §5).
-- One row per (tenant, customer, metric, period) counter of the period,
-- replaced per period in one transaction.
--
-- Units: every total here is in the units Stripe holds, i.e. the push's
-- scaled integer units: local_total = floor(unit_scale × period value)
-- (for a closed period, the total at close) plus what was carried into the
-- period from closed ones; local_value keeps the unscaled period_usage
-- value. status: ok | drift | pending | unmapped | stripe_error | late_pending.
CREATE TABLE IF NOT EXISTS reconciliation (
    tenant_id        VARCHAR NOT NULL,
    customer_ref     VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    period_start     TIMESTAMP NOT NULL,
    period_end       TIMESTAMP NOT NULL,
    stripe_customer  VARCHAR,                 -- cus_…, NULL when unmapped
    event_name       VARCHAR,                 -- the meter's event name, NULL when unmapped
    account          VARCHAR,                 -- acct_… or 'platform'
    mode             VARCHAR,                 -- live | test
    meter_formula    VARCHAR,                 -- sum | last
    unit_scale       BIGINT NOT NULL,
    local_value      DECIMAL(38, 9) NOT NULL, -- period_usage.value (unscaled)
    local_total      DECIMAL(38, 9),          -- scaled units, what Stripe should hold for the window; NULL
                                              -- for an unmapped counter beyond DECIMAL(38, 9) once scaled
    pushed_total     DECIMAL(38, 9),          -- acknowledged (sum: pushed_total + carried_in, last: last_value)
    stripe_total     DECIMAL(38, 9),          -- Stripe's meter event summary over the window, NULL when unknown
    drift            DECIMAL(38, 9),          -- |local_total − stripe_total|
    relative_drift   DECIMAL(38, 9),          -- drift / |local_total|; 1 (100 %) when local is 0 and Stripe is not
    status           VARCHAR NOT NULL,
    cause            VARCHAR NOT NULL,        -- the likely cause, in words
    corrected        BOOLEAN NOT NULL DEFAULT FALSE, -- an under-report was re-sent in this run
    window_start     BIGINT,                  -- summary window, epoch seconds (minute-aligned)
    window_end       BIGINT,
    run_id           VARCHAR,
    checked_at       TIMESTAMP NOT NULL
);

ALTER TABLE reconciliation ALTER COLUMN local_total DROP NOT NULL;

-- Every auto-correction: the counter's acknowledged total was lowered to
-- what Stripe was seen to hold, so the push planner re-sends the gap as a
-- new intent (new revision, new identifier) through the outbox.
CREATE TABLE IF NOT EXISTS reconciliation_corrections (
    tenant_id        VARCHAR NOT NULL,
    customer_ref     VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    period_start     TIMESTAMP NOT NULL,
    account          VARCHAR NOT NULL,
    mode             VARCHAR NOT NULL,
    meter_formula    VARCHAR NOT NULL,
    local_total      BIGINT NOT NULL,
    stripe_total     BIGINT NOT NULL,
    old_pushed       BIGINT,                  -- sum: pushed_total, last: last_value before the reset
    new_pushed       BIGINT,
    missing          BIGINT NOT NULL,         -- local_total − stripe_total
    run_id           VARCHAR,
    corrected_at     TIMESTAMP NOT NULL
);
