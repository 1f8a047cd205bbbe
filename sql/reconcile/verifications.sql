-- Counters of the period $period_start with intents under verification
-- (an error report counted failures without naming them): the codes.
SELECT p.account, p.mode, p.tenant_id, p.customer_ref, p.metric,
       string_agg(DISTINCT v.code, ', ') AS codes, count(*) AS intents
FROM stripe_push_verifications v
JOIN stripe_pushes p USING (identifier)
WHERE v.status = 'open' AND p.period_start = $period_start
GROUP BY ALL
