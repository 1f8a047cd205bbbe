-- /metrics: quarantined rows by reason (a bounded set).
SELECT reason, count(*) FROM quarantine GROUP BY reason
