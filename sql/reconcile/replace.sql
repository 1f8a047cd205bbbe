-- Replaces the period's rows of `reconciliation`: the rows Stripe was asked
-- about (TEMP reconciliation_rows) and the frame's rows classified in SQL
-- (TEMP recon_frame, status set). Run in one transaction.
-- Params: $period_start, $run_id, $checked_at.
DELETE FROM reconciliation WHERE period_start = $period_start;

INSERT INTO reconciliation BY NAME SELECT * FROM reconciliation_rows;

INSERT INTO reconciliation BY NAME
SELECT tenant_id, customer_ref, metric, period_start, period_end, stripe_customer, event_name, account, mode,
       meter_formula, unit_scale, local_value, local_total, pushed_total, status, cause, false AS corrected,
       $run_id AS run_id, $checked_at AS checked_at
FROM recon_frame
WHERE status IS NOT NULL
