-- /metrics: ledger events per tenant is unbounded in customers, so one total only.
SELECT count(*) FROM events
