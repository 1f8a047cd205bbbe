-- GET /v1/events: a tenant's latest ledger events, optionally one customer's.
SELECT tenant_id, metric, customer_ref, resource_id, quantity, ts, idempotency_key, meta, ingested_at
FROM events
WHERE tenant_id = $tenant AND ($customer IS NULL OR customer_ref = $customer)
ORDER BY ts DESC, seq DESC
LIMIT $limit
