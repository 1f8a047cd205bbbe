-- Counters: always a pure function of the ledger (events not pending-late).

-- Per (tenant, metric, customer, UTC day): every aggregation at once, so a
-- period can be folded from days whatever its metric's aggregation.
CREATE TABLE IF NOT EXISTS daily_usage (
    tenant_id     VARCHAR NOT NULL,
    metric        VARCHAR NOT NULL,
    customer_ref  VARCHAR NOT NULL,
    day           DATE NOT NULL,
    sum_quantity  DECIMAL(38, 9) NOT NULL,
    event_count   BIGINT NOT NULL,
    max_quantity  DECIMAL(38, 9) NOT NULL,
    last_quantity DECIMAL(38, 9) NOT NULL,  -- of the latest event by ts, then ingestion order, then key
    last_ts       TIMESTAMP NOT NULL,
    last_seq      BIGINT NOT NULL,
    last_key      VARCHAR NOT NULL,
    watermark     TIMESTAMP NOT NULL,       -- greatest ts counted this day
    computed_at   TIMESTAMP NOT NULL
);

-- A version per day of daily_usage, bumped (from the sequence) by every
-- recomputation of the day, rows or none, in its transaction: the analyst
-- snapshot rewrites only the days whose version it has not published (and
-- gives a version to days counted before versions existed).
CREATE SEQUENCE IF NOT EXISTS daily_usage_version;
CREATE TABLE IF NOT EXISTS daily_usage_days (
    day     DATE NOT NULL,
    version BIGINT NOT NULL
);

-- Per billing period [period_start, period_end): `value` is the metric's
-- aggregation (sum | count | max | last) over the period.
CREATE TABLE IF NOT EXISTS period_usage (
    tenant_id    VARCHAR NOT NULL,
    metric       VARCHAR NOT NULL,
    customer_ref VARCHAR NOT NULL,
    period_start TIMESTAMP NOT NULL,
    period_end   TIMESTAMP NOT NULL,
    aggregation  VARCHAR NOT NULL,
    value        DECIMAL(38, 9) NOT NULL,
    event_count  BIGINT NOT NULL,
    watermark    TIMESTAMP NOT NULL,
    computed_at  TIMESTAMP NOT NULL
);
