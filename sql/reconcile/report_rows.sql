-- The period's rows for the HTML and Markdown reports, the most urgent first:
-- drift and errors before pending and unmapped, ok last, the largest relative
-- drift first. $notable: only rows not ok or corrected. At most $limit rows.
SELECT tenant_id, customer_ref, metric, stripe_customer, event_name, local_total, pushed_total, stripe_total,
       drift, relative_drift, status, cause, corrected
FROM reconciliation
WHERE period_start = $period_start AND (NOT $notable OR status <> 'ok' OR corrected)
ORDER BY CASE status WHEN 'drift' THEN 0 WHEN 'stripe_error' THEN 1 WHEN 'late_pending' THEN 2
                     WHEN 'pending' THEN 3 WHEN 'unmapped' THEN 4 ELSE 5 END,
         relative_drift DESC NULLS LAST, tenant_id, customer_ref, metric
LIMIT $limit
