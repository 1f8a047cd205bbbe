-- What Stripe reported later about meter events it had answered 200 for
-- (DESIGN §4 "What Stripe checks later"): thin events
-- v1.billing.meter.error_report_triggered / v1.billing.meter.no_meter_found,
-- pulled from GET /v2/core/events per mapped meter.

-- One row per sample error of a report (identifier = the meter event
-- identifier, i.e. a stripe_pushes.identifier), plus one row with
-- identifier NULL per error type whose error_count exceeds the samples named
-- (Stripe samples: the unnamed failures put that meter's intents of the
-- validation window under verification).
CREATE TABLE IF NOT EXISTS stripe_meter_errors (
    event_id         VARCHAR NOT NULL,   -- evt_… (v2 event)
    meter            VARCHAR,            -- mtr_…, NULL for no_meter_found
    code             VARCHAR NOT NULL,   -- e.g. meter_event_customer_not_found, archived_meter, no_meter
    identifier       VARCHAR,            -- the failed meter event's identifier; NULL: failures not named
    message          VARCHAR,
    validation_start TIMESTAMP,
    validation_end   TIMESTAMP,
    seen_at          TIMESTAMP NOT NULL, -- when stripemeter pulled the report
    mode             VARCHAR NOT NULL,   -- live | test
    account          VARCHAR NOT NULL,   -- acct_… or 'platform'
    error_count      BIGINT NOT NULL     -- failures of this code in the report (named or not)
);

-- Where the pull of each (mode, account, meter) stopped: reports created at
-- or after `created_from` are listed next time (already stored ones skipped).
CREATE TABLE IF NOT EXISTS stripe_meter_error_cursor (
    mode         VARCHAR NOT NULL,
    account      VARCHAR NOT NULL,
    meter        VARCHAR NOT NULL,       -- mtr_…, or 'no_meter_found' for the account's no-meter reports
    created_from TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- Acknowledged intents of a meter and validation window for which a report
-- counted failures it did not name: their 200s are not trusted until a
-- settled summary of their counter matches what was acknowledged.
-- status: open | verified | short (Stripe's settled total was below it).
CREATE TABLE IF NOT EXISTS stripe_push_verifications (
    identifier   VARCHAR NOT NULL,
    event_id     VARCHAR NOT NULL,
    code         VARCHAR NOT NULL,
    status       VARCHAR NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    checked_at   TIMESTAMP
);

-- Stripe's summary totals as reconciliation read them, per counter window.
-- Summaries are eventually consistent: an under-report is re-sent only when
-- two reads at least stripe.summary_settle_minutes apart agree (DESIGN §4).
CREATE TABLE IF NOT EXISTS stripe_summary_reads (
    account      VARCHAR NOT NULL,
    mode         VARCHAR NOT NULL,
    tenant_id    VARCHAR NOT NULL,
    customer_ref VARCHAR NOT NULL,
    metric       VARCHAR NOT NULL,
    period_start TIMESTAMP NOT NULL,
    stripe_total BIGINT NOT NULL,
    read_at      TIMESTAMP NOT NULL
);
