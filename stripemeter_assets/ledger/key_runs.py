"""The ledger's key hashes in sorted runs (`event_keys`), so that a batch's
dedupe reads what its own keys need rather than every key_hash of the
ledger (sql/ledger/candidates.sql).

A run is written once the tail of the ledger not yet in one reaches
RUN_MIN_ROWS: up to then the tail is looked up in `events` itself, read by
seq, which is cheap while it is short. Runs are never merged: a lookup of
few keys reads about two row groups per run (its own and one straddling the
previous run), so a ledger grown by small batches has one run per
RUN_MIN_ROWS events.

The runs cover exactly the events with seq <= compacted_through because
batches append one at a time, each above every seq before it (file_seq comes
from landing_file_seq), which the batch's own tail reads rely on too. A run
is only a shortcut to candidate rows: verdicts always compare the events'
exact (tenant_id, idempotency_key).

A 100k-key batch still reads every row group of the runs (its keys spread
over the whole hash range): at 100M events that probe costs about what the
old scan of events.key_hash did; only an index would make it follow the
batch (DuckDB's ART on key_hash, measured at 10M: 14 s to build, +36
bytes/event, 3.6 s to append 100k events).
"""

from __future__ import annotations

import duckdb

from stripemeter_assets.warehouse import run_script

RUN_MIN_ROWS = 1_000_000


def compacted_through(conn: duckdb.DuckDBPyConnection) -> int:
    """The greatest seq already in a run (-1: none)."""
    return conn.execute("SELECT compacted_through FROM event_keys_state").fetchone()[0]


def write_run_if_due(conn: duckdb.DuckDBPyConnection, through: int) -> None:
    """Writes the tail after `through` as a run once it is long enough; run in
    the batch's transaction, after its append."""
    [(tail,)] = conn.execute("SELECT count(*) FROM events WHERE seq > ?", [through]).fetchall()
    if tail >= RUN_MIN_ROWS:
        run_script(conn, "ledger/key_run.sql", compacted_through=through)
