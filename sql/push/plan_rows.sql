-- The rows of TEMP push_plan with action $action: how many, and the first few.
SELECT count(*) AS counters,
       list([tenant_id, metric, customer_ref] ORDER BY period_start, tenant_id, metric, customer_ref)[1:$examples]
           AS examples
FROM push_plan
WHERE action = $action
