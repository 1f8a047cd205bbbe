"""The analyst snapshot (DESIGN §8): a consistent read-only copy of the
warehouse, published by atomic file swap.

DuckDB admits one writer process, and even a read-only connection from
another process conflicts with it, so analysts never open the warehouse.
They open `STRIPEMETER_ANALYTICS`, which the writer replaces whole: the copy
is built in a temporary file next to it, then `os.replace`d over it. A reader
with an open connection keeps the old inode (its consistent old view); a new
connection sees the new file. Publishing never waits for readers.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from datetime import UTC, datetime

import duckdb

from stripemeter_assets import settings, warehouse
from stripemeter_assets.warehouse import ident, literal

VIEWS_SQL = "analytics/analyst_views.sql"


def publish_snapshot(warehouse_path: str | None = None, analytics_path: str | None = None) -> dict[str, int]:
    """Opens the warehouse (as the writer) and publishes its snapshot."""
    with warehouse.connect(warehouse_path or settings.warehouse_path()) as conn:
        return publish_snapshot_from(conn, analytics_path)


def publish_snapshot_from(conn: duckdb.DuckDBPyConnection, analytics_path: str | None = None, *,
                          as_of: datetime | None = None) -> dict[str, int]:
    """Copies every table of `conn`'s database, as of one transaction, to a
    new snapshot file, adds the analyst views and swaps it in. Returns the
    row count per table copied. `as_of` (default `settings.now()`) is the
    "now" the views use, stored in the snapshot's `snapshot_info` table.
    On failure the previous snapshot stays in place and the temporary file
    is removed."""
    target = os.path.abspath(analytics_path or settings.analytics_path())
    as_of = (as_of or settings.now()).astimezone(UTC).replace(tzinfo=None)
    folder, base = os.path.split(target)
    os.makedirs(folder, exist_ok=True)
    # Same folder: os.replace is atomic only within one filesystem. A dot-name,
    # so nothing mistakes a half-built copy for a snapshot.
    tmp = os.path.join(folder, f".{base}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        counts = _copy_tables(conn, tmp, as_of)
        _create_views(tmp)
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, tmp + ".wal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
        raise
    return counts


def _copy_tables(conn: duckdb.DuckDBPyConnection, tmp: str, as_of: datetime) -> dict[str, int]:
    source = conn.execute("SELECT current_database()").fetchone()[0]
    alias = f"sm_snapshot_{uuid.uuid4().hex[:12]}"
    conn.execute(f"ATTACH {literal(tmp)} AS {ident(alias)}")
    counts: dict[str, int] = {}
    try:
        # One transaction: every table is read from the same MVCC snapshot,
        # so the copy is consistent even while other cursors write.
        with warehouse.transaction(conn):
            tables = conn.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = ? AND NOT temporary ORDER BY schema_name, table_name", [source]
            ).fetchall()
            for schema, table in tables:
                if schema != "main":
                    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(alias)}.{ident(schema)}")
                dst = f"{ident(alias)}.{ident(schema)}.{ident(table)}"
                conn.execute(f"CREATE TABLE {dst} AS SELECT * FROM {ident(source)}.{ident(schema)}.{ident(table)}")
                name = table if schema == "main" else f"{schema}.{table}"
                counts[name] = conn.execute(f"SELECT count(*) FROM {dst}").fetchone()[0]
            conn.execute(
                f"CREATE TABLE {ident(alias)}.main.snapshot_info AS "
                "SELECT ?::TIMESTAMP AS as_of, ?::TIMESTAMP AS published_at, ?::VARCHAR AS source",
                [as_of, datetime.now(UTC).replace(tzinfo=None), source],
            )
        conn.execute(f"CHECKPOINT {ident(alias)}")
    finally:
        conn.execute(f"DETACH {ident(alias)}")
    return counts


def _create_views(path: str) -> None:
    # Its own connection, so the views' unqualified names bind to the
    # snapshot's tables, never to the writer session's temp objects.
    conn = duckdb.connect(path)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        warehouse.run_script(conn, VIEWS_SQL)
        conn.execute("CHECKPOINT")
    finally:
        conn.close()
