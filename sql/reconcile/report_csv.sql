-- Every row of the period's reconciliation as CSV, to {{path}}: integral
-- numbers without decimals, others with the counters' 9 places, times in UTC.
COPY (
    SELECT tenant_id, customer_ref, metric,
           strftime(period_start, '%Y-%m-%dT%H:%M:%SZ') AS period_start,
           strftime(period_end, '%Y-%m-%dT%H:%M:%SZ') AS period_end,
           stripe_customer, event_name, meter_formula, unit_scale,
           sm_number(local_value) AS local_value, sm_number(local_total) AS local_total,
           sm_number(pushed_total) AS pushed_total, sm_number(stripe_total) AS stripe_total,
           sm_number(drift) AS drift, sm_number(relative_drift) AS relative_drift, status, cause, corrected
    FROM reconciliation
    WHERE period_start = $period_start
    ORDER BY tenant_id, customer_ref, metric
) TO {{path}} (HEADER, DELIMITER ',');
