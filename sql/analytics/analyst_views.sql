-- Analyst views, created in every published snapshot (stripemeter_assets/snapshot.py).
-- "Now" is the snapshot's as-of time (`snapshot_info.as_of`, from
-- STRIPEMETER_NOW or the clock at publication), so the views describe the
-- data exactly as it stood when the snapshot was taken.

-- An empty stand-in until the reconciliation asset has written its table, so
-- v_drift and queries against `reconciliation` work from the first snapshot.
-- Columns as DESIGN §7 documents them.
CREATE TABLE IF NOT EXISTS reconciliation (
    tenant_id    VARCHAR,
    customer_ref VARCHAR,
    metric       VARCHAR,
    period_start TIMESTAMP,
    local_total  DECIMAL(38, 9),
    pushed_total DECIMAL(38, 9),
    stripe_total DECIMAL(38, 9),
    drift        DECIMAL(38, 9),
    status       VARCHAR,
    cause        VARCHAR
);

-- The period_usage rows of the billing period containing the as-of time:
-- one row per (tenant, metric, customer) with usage in the open period.
CREATE OR REPLACE VIEW v_current_period_usage AS
SELECT p.*
FROM period_usage p
JOIN snapshot_info s ON p.period_start <= s.as_of AND s.as_of < p.period_end;

-- What the open period's invoice would bill, per tenant, customer and metric:
-- the counter value, the events it folds in, every ledger event in the
-- period (including late ones not yet applied), and those late ones.
CREATE OR REPLACE VIEW v_invoice_preview AS
SELECT
    p.tenant_id,
    p.customer_ref,
    p.metric,
    p.period_start,
    p.period_end,
    p.aggregation,
    p.value,
    p.event_count,
    coalesce(e.ledger_event_count, 0) AS ledger_event_count,
    coalesce(l.late_pending_count, 0) AS late_pending_count,
    p.watermark
FROM v_current_period_usage p
LEFT JOIN (
    SELECT e.tenant_id, e.metric, e.customer_ref, c.period_start, count(*) AS ledger_event_count
    FROM events e
    JOIN v_current_period_usage c
      ON c.tenant_id = e.tenant_id AND c.metric = e.metric AND c.customer_ref = e.customer_ref
     AND e.ts >= c.period_start AND e.ts < c.period_end
    GROUP BY ALL
) e USING (tenant_id, metric, customer_ref, period_start)
LEFT JOIN (
    SELECT l.tenant_id, l.metric, l.customer_ref, c.period_start, count(*) AS late_pending_count
    FROM late_events l
    JOIN v_current_period_usage c
      ON c.tenant_id = l.tenant_id AND c.metric = l.metric AND c.customer_ref = l.customer_ref
     AND l.ts >= c.period_start AND l.ts < c.period_end
    WHERE l.status = 'pending'
    GROUP BY ALL
) l USING (tenant_id, metric, customer_ref, period_start);

-- Reconciliation rows that need attention: every status but 'ok'.
CREATE OR REPLACE VIEW v_drift AS
SELECT * FROM reconciliation WHERE status IS DISTINCT FROM 'ok';
