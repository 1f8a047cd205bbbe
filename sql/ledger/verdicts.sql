-- Which valid staged rows must not be appended, and why: their key is
-- already in the ledger or repeats earlier in the batch (first by file, then
-- row, wins). Same billable payload -> duplicate; different -> conflict.
-- `meta` is descriptive and never part of the payload. Reads candidates.sql's
-- tables. Params: $compacted_through (event_keys_state).

-- The ledger rows behind those hashes (usually none): their seqs from the
-- runs, then the other columns of those rows only.
CREATE OR REPLACE TEMP TABLE ledger_matches AS
SELECT tenant_id, idempotency_key, metric, customer_ref, resource_id, ts, quantity, source_file, row_number
FROM events
WHERE seq IN (SELECT k.seq FROM event_keys k SEMI JOIN ledger_candidates c ON c.key_hash = k.key_hash)
UNION ALL
SELECT tenant_id, idempotency_key, metric, customer_ref, resource_id, ts, quantity, source_file, row_number
FROM events
WHERE seq > $compacted_through AND key_hash IN (SELECT key_hash FROM ledger_candidates);

-- `valid` is read twice: NOT MATERIALIZED keeps it from being copied whole.
INSERT INTO verdicts
WITH valid AS NOT MATERIALIZED (
    SELECT * FROM staged WHERE reason IS NULL
),
in_ledger AS (
    SELECT v.file_seq, v.row_number, 1 AS priority,
        e.metric = v.metric AND e.customer_ref = v.customer_ref
            AND e.resource_id IS NOT DISTINCT FROM v.resource_id
            AND e.ts = v.ts AND e.quantity = v.quantity AS same,
        e.source_file AS first_file, e.row_number AS first_row
    FROM valid v
    JOIN ledger_matches e ON e.tenant_id = v.tenant_id AND e.idempotency_key = v.idempotency_key
),
ranked AS (
    SELECT v.file_seq, v.row_number, 2 AS priority,
        row_number() OVER w AS rk,
        struct_pack(v.metric, v.customer_ref, v.resource_id, v.ts, v.quantity)
            IS NOT DISTINCT FROM first_value(struct_pack(v.metric, v.customer_ref, v.resource_id, v.ts, v.quantity)) OVER w AS same,
        first_value(v.file_seq) OVER w AS first_seq,
        first_value(v.row_number) OVER w AS first_row
    -- the exact key partitions; a hash shared by different keys leaves each first
    FROM valid v
    SEMI JOIN batch_repeats r ON r.key_hash = v.key_hash
    WINDOW w AS (PARTITION BY v.tenant_id, v.idempotency_key ORDER BY v.file_seq, v.row_number)
),
candidates AS (
    SELECT file_seq, row_number, priority, same, first_file, first_row FROM in_ledger
    UNION ALL
    SELECT r.file_seq, r.row_number, r.priority, r.same, f.path, r.first_row
    FROM ranked r JOIN batch_files f ON f.file_seq = r.first_seq
    WHERE r.rk > 1
)
SELECT file_seq, row_number,
    CASE WHEN same THEN 'duplicate' ELSE 'conflict' END AS verdict,
    first_file, first_row
FROM candidates
QUALIFY row_number() OVER (PARTITION BY file_seq, row_number ORDER BY priority) = 1;
