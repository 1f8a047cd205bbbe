-- /metrics: late events beyond the window waiting for a replay.
SELECT count(*) FROM late_events WHERE status = 'pending'
