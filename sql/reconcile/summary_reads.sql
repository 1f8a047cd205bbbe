-- Records this run's summary reads (TEMP table summary_reads, same columns
-- as stripe_summary_reads) and forgets reads older than a week. Param: $now.
INSERT INTO stripe_summary_reads SELECT * FROM summary_reads;

DELETE FROM stripe_summary_reads WHERE read_at < $now - INTERVAL 7 DAY;
