-- Every counter of the period $period_start as a reconciliation row before
-- Stripe is read (TEMP recon_frame), from TEMP tables built by
-- reconcile/frame.py: recon_counters (push/counters.sql plus the vanished
-- counters), counter_meters and counter_customers (push/targets.py: each
-- counter's Stripe target) and recon_reads (per mode: `no_read`, why no
-- summary can be read).
--
-- Totals are in Stripe's units: sm_units_at_close (the total at close for a
-- closed period), plus what closed periods carried into a sum meter's window. `status` is set here for the rows
-- Stripe is not asked about (unmapped, or no key to read with); NULL rows
-- are read and classified by reconcile/run.py. A mapped counter whose
-- total in Stripe's units does not fit `reconciliation.local_total`
-- (DECIMAL(38, 9): a value near the limit times its unit_scale) leaves the
-- frame for TEMP recon_too_large, which fails the run by name once every
-- other row is stored; an unmapped one stays, unmapped, with no local_total,
-- as the push only reports it. Scaling is TRY'd so that none stops the others.
-- Params: $period_start, $now, $sum_aggregations, $not_in_stripe,
-- $unmapped_meter, $unmapped_customer (causes), $summary_failed (cause prefix).
CREATE OR REPLACE TEMP TABLE recon_frame AS
WITH c AS (
    SELECT c.tenant_id, c.customer_ref, c.metric, c.period_start, c.period_end, c.aggregation,
           c.value AS local_value, m.unit_scale, m.event_name, m.meter_id, m.shadow, rd.no_read,
           CASE WHEN c.aggregation IN (SELECT unnest($sum_aggregations::VARCHAR[])) THEN 'sum' ELSE 'last' END
               AS meter_formula,
           CASE WHEN m.event_name IS NOT NULL THEN cu.stripe_customer END AS stripe_customer,
           TRY(sm_units_at_close(c.value, c.since_close, c.period_end, m.grace_us, m.unit_scale, $now::TIMESTAMP))
               AS scaled_total
    FROM recon_counters c
    JOIN counter_meters m USING (tenant_id, metric)
    LEFT JOIN counter_customers cu USING (customer_ref)
    LEFT JOIN recon_reads rd ON rd.mode = m.mode AND rd.shadow = m.shadow
), mapped AS (
    SELECT c.*,
           CASE WHEN c.stripe_customer IS NOT NULL THEN m.account END AS account,
           CASE WHEN c.stripe_customer IS NOT NULL THEN m.mode END AS mode
    FROM c JOIN counter_meters m USING (tenant_id, metric)
), pushes AS (
    SELECT account, mode, tenant_id, customer_ref, metric,
           count(*) FILTER (WHERE status = 'pending') AS pending_intents,
           max(acked_at) FILTER (WHERE status = 'acknowledged') AS last_acked_at,
           arg_max(status, revision) FILTER (WHERE status IN ('pending', 'acknowledged', 'failed', 'rejected_by_stripe',
                                                              'refused_meter_config', 'refused_unknown_customer'))
               AS latest_status,
           arg_max(last_error, revision) FILTER (WHERE status IN ('failed', 'rejected_by_stripe',
                                                                  'refused_meter_config', 'refused_unknown_customer'))
               AS failed_error,
           arg_max(last_error, revision) FILTER (WHERE status = 'rejected_by_stripe') AS rejected_error,
           count(*) FILTER (WHERE status = 'skipped_too_old') > 0 AS too_old
    FROM stripe_pushes
    WHERE period_start = $period_start::TIMESTAMP
    GROUP BY ALL
), verifying AS (
    SELECT p.account, p.mode, p.tenant_id, p.customer_ref, p.metric, string_agg(DISTINCT v.code, ', ') AS verifying
    FROM stripe_push_verifications v
    JOIN stripe_pushes p USING (identifier)
    WHERE v.status = 'open' AND p.period_start = $period_start::TIMESTAMP
    GROUP BY ALL
), late AS (
    SELECT l.tenant_id, l.metric, l.customer_ref, count(*) AS late_pending
    FROM late_events l
    SEMI JOIN recon_counters c ON c.tenant_id = l.tenant_id AND c.metric = l.metric
                              AND c.customer_ref = l.customer_ref AND l.ts >= c.period_start AND l.ts < c.period_end
    WHERE l.status = 'pending'
    GROUP BY ALL
), rows AS (
    SELECT r.tenant_id, r.customer_ref, r.metric, r.period_start, r.period_end, r.unit_scale, r.local_value,
           TRY_CAST(r.scaled_total + CASE WHEN r.meter_formula = 'sum' THEN coalesce(s.carried_in, 0) ELSE 0 END
                    AS DECIMAL(38, 9)) AS local_total,
           r.stripe_customer, r.event_name, r.account, r.mode, r.shadow, r.meter_id, r.meter_formula,
           CASE WHEN r.meter_formula = 'sum' THEN s.pushed_total + s.carried_in ELSE s.last_value END AS pushed_total,
           coalesce(p.pending_intents, 0) AS pending_intents, p.last_acked_at, p.latest_status, p.failed_error,
           p.rejected_error, coalesce(p.too_old, false) AS too_old, v.verifying,
           coalesce(l.late_pending, 0) AS late_pending, r.no_read
    FROM mapped r
    LEFT JOIN stripe_push_state s
        ON s.account = r.account AND s.mode = r.mode AND s.tenant_id = r.tenant_id
       AND s.customer_ref = r.customer_ref AND s.metric = r.metric AND s.period_start = r.period_start
    LEFT JOIN pushes p
        ON p.account = r.account AND p.mode = r.mode AND p.tenant_id = r.tenant_id
       AND p.customer_ref = r.customer_ref AND p.metric = r.metric
    LEFT JOIN verifying v
        ON v.account = r.account AND v.mode = r.mode AND v.tenant_id = r.tenant_id
       AND v.customer_ref = r.customer_ref AND v.metric = r.metric
    LEFT JOIN late l ON l.tenant_id = r.tenant_id AND l.metric = r.metric AND l.customer_ref = r.customer_ref
)
SELECT *,
       -- the precedence of reconcile/compare.py's classify, for the rows that need no read
       CASE WHEN event_name IS NULL OR stripe_customer IS NULL THEN 'unmapped'
            WHEN no_read IS NOT NULL
                 AND NOT (coalesce(latest_status IN (SELECT unnest($not_in_stripe::VARCHAR[])), false)
                          AND pending_intents = 0) THEN 'stripe_error'
       END AS status,
       CASE WHEN event_name IS NULL THEN $unmapped_meter
            WHEN stripe_customer IS NULL THEN $unmapped_customer
            WHEN no_read IS NOT NULL
                 AND NOT (coalesce(latest_status IN (SELECT unnest($not_in_stripe::VARCHAR[])), false)
                          AND pending_intents = 0) THEN $summary_failed || no_read
       END AS cause
FROM rows;

CREATE OR REPLACE TEMP TABLE recon_too_large AS
SELECT tenant_id, customer_ref, metric, period_start, local_value, unit_scale FROM recon_frame
WHERE local_total IS NULL AND status IS DISTINCT FROM 'unmapped';

DELETE FROM recon_frame WHERE local_total IS NULL AND status IS DISTINCT FROM 'unmapped';
