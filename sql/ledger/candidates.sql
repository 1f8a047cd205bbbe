-- The batch's keys that may already be in the ledger or repeat inside the
-- batch, found by hash (verdicts.sql decides on the exact keys, and only
-- runs when either table has a row: a batch of new keys skips it).

-- The ledger's keys are looked up in event_keys' sorted runs (a batch of
-- few keys reads only the row groups whose min/max hold them) and in the
-- tail not yet in a run, read from `events` by seq (the ledger is in seq
-- order, so the filter skips every older row group).
-- Params: $compacted_through (event_keys_state).
CREATE OR REPLACE TEMP TABLE ledger_candidates AS
SELECT DISTINCT key_hash FROM (
    SELECT k.key_hash FROM event_keys k
    SEMI JOIN staged s ON s.key_hash = k.key_hash AND s.reason IS NULL
    UNION ALL
    SELECT e.key_hash FROM events e
    SEMI JOIN staged s ON s.key_hash = e.key_hash AND s.reason IS NULL
    WHERE e.seq > $compacted_through
);

-- Keys that may repeat inside the batch, found by hash: grouping millions of
-- 64-bit hashes costs a fraction of grouping the key strings.
CREATE OR REPLACE TEMP TABLE batch_repeats AS
SELECT key_hash FROM staged WHERE reason IS NULL GROUP BY key_hash HAVING count(*) > 1;

