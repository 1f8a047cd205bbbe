-- Billing periods and invoice reconciliation (DESIGN §3, §5, §7).

-- The billing periods counters are kept for, per (tenant, customer, metric):
-- Stripe's (source 'stripe': a subscription item on the mapped meter's price,
-- its current period and the periods of its invoices) or, for a customer
-- without such an item, UTC calendar months (source 'calendar', reported
-- no_subscription). Half-open [period_start, period_end), to the second.
CREATE TABLE IF NOT EXISTS billing_periods (
    tenant_id         VARCHAR NOT NULL,
    customer_ref      VARCHAR NOT NULL,
    stripe_customer   VARCHAR,             -- cus_…, NULL when unmapped
    subscription_item VARCHAR,             -- si_…, NULL for calendar periods
    price             VARCHAR,             -- price_…, NULL for calendar periods
    metric            VARCHAR NOT NULL,
    period_start      TIMESTAMP NOT NULL,
    period_end        TIMESTAMP NOT NULL,
    source            VARCHAR NOT NULL,    -- stripe | calendar
    account           VARCHAR,             -- acct_… or 'platform'
    read_at           TIMESTAMP NOT NULL
);

-- The Stripe prices of the subscription items above, as Stripe returned them
-- (tiers expanded), so the invoice reconciliation prices local usage exactly
-- as Stripe will.
CREATE TABLE IF NOT EXISTS billing_prices (
    account  VARCHAR NOT NULL,
    price    VARCHAR NOT NULL,
    currency VARCHAR NOT NULL,
    body     JSON NOT NULL,
    read_at  TIMESTAMP NOT NULL
);

-- Per (tenant, customer, metric, subscription item, period): what the local
-- counter costs on the item's Stripe price, against what Stripe will bill
-- (the invoice preview while the period is open or in its grace) or billed
-- (the finalized invoice's line). Money in the invoice currency's major units.
-- status: ok | invoice_drift | not_invoiced | no_subscription | pending | not_read
-- (no key for the account: its Stripe side is unknown).
CREATE TABLE IF NOT EXISTS invoice_reconciliation (
    tenant_id         VARCHAR NOT NULL,
    customer_ref      VARCHAR NOT NULL,
    metric            VARCHAR NOT NULL,
    subscription_item VARCHAR,
    period_start      TIMESTAMP NOT NULL,
    period_end        TIMESTAMP NOT NULL,
    local_total       DECIMAL(38, 9) NOT NULL,  -- the period counter, in the meter's (scaled) units
    local_amount      DECIMAL(38, 9),           -- pricing library on the item's price; NULL without a price
    stripe_quantity   DECIMAL(38, 9),           -- the invoice (or preview) line's quantity
    stripe_amount     DECIMAL(38, 9),           -- the invoice (or preview) line's amount
    currency          VARCHAR,
    invoice           VARCHAR,                  -- in_… of a drafted/finalized invoice; NULL for a preview
    invoice_status    VARCHAR,                  -- preview | draft | open | paid | …
    money_at_stake    DECIMAL(38, 9) NOT NULL,  -- |local_amount − stripe_amount|, or the unbilled local amount
    status            VARCHAR NOT NULL,
    cause             VARCHAR NOT NULL,
    checked_at        TIMESTAMP NOT NULL,
    run_id            VARCHAR NOT NULL
);
