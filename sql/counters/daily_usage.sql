-- Recomputes daily_usage for the days in [$start, $end): delete the window,
-- insert the recomputation from the ledger. Events still pending as late
-- beyond the window do not count until a replay applies them.
-- Run inside one transaction. Params: $start, $end, $now, $tenant (NULL = all).
DELETE FROM daily_usage
WHERE day >= $start::DATE AND day < $end::DATE
  AND ($tenant IS NULL OR tenant_id = $tenant);

INSERT INTO daily_usage
SELECT e.tenant_id, e.metric, e.customer_ref, e.ts::DATE AS day,
       sum(e.quantity)::DECIMAL(38, 9),
       count(*),
       max(e.quantity),
       arg_max(e.quantity, struct_pack(e.ts, e.seq, e.idempotency_key)),
       max(e.ts),
       arg_max(e.seq, struct_pack(e.ts, e.seq, e.idempotency_key)),
       arg_max(e.idempotency_key, struct_pack(e.ts, e.seq, e.idempotency_key)),
       max(e.ts),
       $now
FROM events e
ANTI JOIN late_events l
    ON l.tenant_id = e.tenant_id AND l.idempotency_key = e.idempotency_key AND l.status = 'pending'
WHERE e.ts >= $start AND e.ts < $end
  AND ($tenant IS NULL OR e.tenant_id = $tenant)
GROUP BY ALL;
