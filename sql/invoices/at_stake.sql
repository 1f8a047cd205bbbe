-- Money at stake per currency over the run's rows at risk ($at_risk statuses).
SELECT currency, sum(money_at_stake) AS total
FROM invoice_reconciliation
WHERE run_id = $run_id AND status IN (SELECT unnest($at_risk::VARCHAR[])) AND currency IS NOT NULL
GROUP BY currency
ORDER BY currency
