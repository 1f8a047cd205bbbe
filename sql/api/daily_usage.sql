-- The customer widget's chart: daily totals of the open period, per metric
-- (the aggregation's daily value: sum, count, max or last of the day).
SELECT d.metric, d.day,
       CASE p.aggregation WHEN 'count' THEN d.event_count::DECIMAL(38, 9) WHEN 'max' THEN d.max_quantity
            WHEN 'last' THEN d.last_quantity ELSE d.sum_quantity END AS value
FROM daily_usage d
JOIN v_current_period_usage p USING (tenant_id, metric, customer_ref)
WHERE d.tenant_id = $tenant AND d.customer_ref = $customer
  AND d.day >= p.period_start::DATE AND d.day < p.period_end
ORDER BY d.metric, d.day
