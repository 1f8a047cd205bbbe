-- TEMP invoice_counters, filled per period by invoices/counters.sql: the
-- mapped counters of the run's periods with what the invoice side needs.
CREATE OR REPLACE TEMP TABLE invoice_counters (
    tenant_id         VARCHAR,
    customer_ref      VARCHAR,
    metric            VARCHAR,
    period_start      TIMESTAMP,
    period_end        TIMESTAMP,
    local_total       HUGEINT,   -- the meter's units (reconcile/frame.sql)
    account           VARCHAR,
    shadow            BOOLEAN,
    event_name        VARCHAR,
    source            VARCHAR,   -- billing_periods.source, 'calendar' without a row
    subscription_item VARCHAR,
    price             VARCHAR,
    price_account     VARCHAR    -- the account the item's price lives on
);
