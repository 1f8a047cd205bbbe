-- Writes the ledger's tail (events after $compacted_through) as one more run
-- of event_keys, sorted by key_hash so that each of its row groups covers a
-- narrow range of hashes. Run inside the batch transaction, after the append.
-- Params: $compacted_through.
CREATE OR REPLACE TEMP TABLE key_run AS
SELECT key_hash, seq FROM events WHERE seq > $compacted_through;

INSERT INTO event_keys SELECT key_hash, seq FROM key_run ORDER BY key_hash;

UPDATE event_keys_state SET compacted_through = (SELECT max(seq) FROM key_run);

DROP TABLE key_run;
