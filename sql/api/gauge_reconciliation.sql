-- /metrics: reconciliation rows by status.
SELECT status, count(*) FROM reconciliation GROUP BY status
