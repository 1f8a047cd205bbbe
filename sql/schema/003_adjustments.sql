-- Changes to a closed period's total (its invoice is final). Never pushed
-- into that period: with policy carry_forward the push sends `delta` into the
-- customer's current open period; with hold it waits for an operator.
CREATE TABLE IF NOT EXISTS period_adjustments (
    tenant_id     VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    customer_ref  VARCHAR NOT NULL,
    origin_period TIMESTAMP NOT NULL,      -- period_start of the closed period
    aggregation   VARCHAR NOT NULL,
    old_value     DECIMAL(38, 9) NOT NULL,
    new_value     DECIMAL(38, 9) NOT NULL,
    delta         DECIMAL(38, 9) NOT NULL, -- new_value - old_value
    policy        VARCHAR NOT NULL,        -- carry_forward | hold
    status        VARCHAR NOT NULL,        -- open | held | pushed
    target_period TIMESTAMP,               -- set when pushed
    recorded_at   TIMESTAMP NOT NULL,
    run_id        VARCHAR NOT NULL
);
