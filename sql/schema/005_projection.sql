-- Cost projection for billing periods (asset `cost_projection`, DESIGN §6):
-- one row per period_usage counter, priced through the pricing library with
-- the config's `prices:` (per-tenant overrides in `prices_by_tenant:`).
-- Replaced per period in one transaction.
CREATE TABLE IF NOT EXISTS cost_projection (
    tenant_id        VARCHAR NOT NULL,
    customer_ref     VARCHAR NOT NULL,
    metric           VARCHAR NOT NULL,
    period_start     TIMESTAMP NOT NULL,
    period_end       TIMESTAMP NOT NULL,
    aggregation      VARCHAR NOT NULL,        -- sum | count | max | last (from period_usage)
    usage_to_date    DECIMAL(38, 9) NOT NULL, -- period_usage.value
    elapsed_fraction DECIMAL(7, 6) NOT NULL,  -- (now - period_start) / (period_end - period_start), in [0, 1]
    projected_usage  DECIMAL(38, 9),          -- sum/count: to_date / elapsed_fraction (exact elapsed time),
                                              -- max/last: to_date, NULL before 10 % of the period
    is_estimate      BOOLEAN NOT NULL,        -- a projection is shown and the period is not over
    priced           BOOLEAN NOT NULL,        -- the metric has a price for this tenant
    currency         VARCHAR,                 -- ISO 4217 of the price, NULL when unpriced
    cost_to_date     DECIMAL(38, 4),          -- money rounded half up to the currency's minor units
    projected_cost   DECIMAL(38, 4),          -- NULL when no projection or unpriced
    note             VARCHAR,                 -- why a cost or projection is missing
    computed_at      TIMESTAMP NOT NULL
);
