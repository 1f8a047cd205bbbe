"""The analyst snapshot (DESIGN §8): a consistent read-only view of the
warehouse, published by atomic file swap, at a cost that follows what
changed rather than the ledger's size.

DuckDB admits one writer process, and even a read-only connection from
another process conflicts with it, so analysts never open the warehouse.
They open `STRIPEMETER_ANALYTICS`, which the writer replaces whole: a new
file is built next to it, then `os.replace`d over it. A reader with an open
connection keeps the old inode (its consistent old view); a new connection
sees the new file. Publishing never waits for readers.

The append-only tables (`events`, `quarantine`, `landing_files`: rows are
never updated or deleted) are not copied into that file. Their rows are
written once, as Parquet segments in `<snapshot>.segments/`, each new
publication writing only the rows appended since the last (a rowid range,
which DuckDB reads without scanning older row groups); the snapshot file
holds views over the segments its transaction saw. Segments are immutable: a
reader's old snapshot keeps reading the files it names. When a size tier
holds `MERGE_FANOUT` segments they are merged into one and retired; retired
files are deleted `RETAIN` after their retirement, and orphaned ones
`RETAIN` after their writing, so a snapshot held open longer than that may
lose rows it still names.

Two mutable tables grow with the history, `daily_usage` (a row per counter
and day) and `stripe_pushes` (a row per intent). They are published as
Parquet files too, one per unit of days of a date column (`UNIT_TABLES`): a
day for the days since the first of the previous month, a month for older
ones, so a year of history is a few dozen files. Each unit has a signature
computed from narrow columns (a version every write bumps) and the table's
columns; a publication writes only the units whose signature is not the one
published, usually today's, and retires their old files like segments.

Every other table (a row per counter, per counter and period, ...) is copied
whole, but for the ledger's key index, which is not published.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import duckdb

from stripemeter_assets import settings, warehouse
from stripemeter_assets.warehouse import ident, literal

VIEWS_SQL = "analytics/analyst_views.sql"
# landing_files: a row per file, so per API call for an API-fed landing.
APPEND_ONLY = ("events", "quarantine", "landing_files")
# Table -> (its units' query, the date a row's unit is of, the rows of the days
# {first}..{last} (DATE literals) in a form whose zone maps prune row groups).
UNIT_TABLES = {
    "daily_usage": ("analytics/units_daily_usage.sql", "day", "day BETWEEN {first} AND {last}"),
    "stripe_pushes": ("analytics/units_stripe_pushes.sql", "created_at::DATE",
                      "created_at >= {first}::TIMESTAMP AND created_at < ({last} + 1)::TIMESTAMP"),
}
# The ledger's key index (ledger/key_runs.py): one row per event, derived from
# `events`, of no use to analysts. Copied whole, it made every publication
# cost what the ledger's size does (6 s after a 100k batch at 100M events).
UNPUBLISHED = ("event_keys", "event_keys_state")
MERGE_FANOUT = 10
RETAIN = timedelta(hours=24)


def publish_snapshot(warehouse_path: str | None = None, analytics_path: str | None = None) -> dict[str, int]:
    """Opens the warehouse (as the writer) and publishes its snapshot."""
    with warehouse.connect(warehouse_path or settings.warehouse_path()) as conn:
        return publish_snapshot_from(conn, analytics_path)


def segments_dir(analytics_path: str) -> str:
    return os.path.abspath(analytics_path) + ".segments"


def publish_snapshot_from(conn: duckdb.DuckDBPyConnection, analytics_path: str | None = None, *,
                          as_of: datetime | None = None) -> dict[str, int]:
    """Publishes the state of `conn`'s database, as of one transaction: new
    segments of the append-only tables, a new snapshot file with the other
    tables, views over the segments and the analyst views, swapped in.
    Returns the row count per table. `as_of` (default `settings.now()`) is
    the "now" the views use, stored in the snapshot's `snapshot_info` table.
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
        counts = _build(conn, tmp, segments_dir(target), as_of)
        _create_views(tmp)
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, tmp + ".wal"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
        raise
    _collect_garbage(conn, segments_dir(target))
    return counts


def _build(conn: duckdb.DuckDBPyConnection, tmp: str, segments: str, as_of: datetime) -> dict[str, int]:
    source = conn.execute("SELECT current_database()").fetchone()[0]
    alias = f"sm_snapshot_{uuid.uuid4().hex[:12]}"
    conn.execute(f"ATTACH {literal(tmp)} AS {ident(alias)}")
    try:
        counts = None
        while counts is None:
            # A transaction writes one database: the segments (and their
            # record in the warehouse) first, then the snapshot file, which
            # names them only if no row was appended in between.
            recent = _recent(as_of)
            with warehouse.transaction(conn):
                exported = {table: _segments(conn, table, segments) for table in APPEND_ONLY}
                warehouse.run_script(conn, "analytics/daily_usage_versions.sql")
                signed = {table: _unit_files(conn, table, segments, recent) for table in UNIT_TABLES}
            counts = _copy(conn, source, alias, exported, signed, recent, as_of)
        conn.execute(f"CHECKPOINT {ident(alias)}")
    finally:
        conn.execute(f"DETACH {ident(alias)}")
    return counts


def _copy(conn: duckdb.DuckDBPyConnection, source: str, alias: str, exported: dict[str, tuple[list[str], int]],
          signed: dict[str, tuple[list[str], int, dict[str, str]]], recent: date,
          as_of: datetime) -> dict[str, int] | None:
    """Copies every table but the exported ones into the snapshot, as of one
    transaction, with views over the exported segments and unit files; None
    if the append-only tables no longer hold what the segments hold, or a
    unit changed since its file was written."""
    counts: dict[str, int] = {}
    # One transaction: every table is read from the same MVCC snapshot, so
    # the copy is consistent even while other cursors write.
    with warehouse.transaction(conn):
        for table, (_, rows) in exported.items():
            if conn.execute(f"SELECT count(*) FROM {ident(source)}.main.{ident(table)}").fetchall() != [(rows,)]:
                return None  # nothing was written yet
        for table, (files, rows, signatures) in signed.items():
            if _signatures(conn, table, recent) != signatures:
                return None
            exported = {**exported, table: (files, rows)}
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() "
            "WHERE database_name = ? AND NOT temporary ORDER BY schema_name, table_name", [source]
        ).fetchall()
        for schema, table in tables:
            if schema == "main" and table in UNPUBLISHED:
                continue
            if schema != "main":
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(alias)}.{ident(schema)}")
            dst = f"{ident(alias)}.{ident(schema)}.{ident(table)}"
            name = table if schema == "main" else f"{schema}.{table}"
            files, rows = exported.get(table, ([], 0)) if schema == "main" else ([], 0)
            if files:
                conn.execute(f"CREATE VIEW {dst} AS SELECT * FROM read_parquet([{', '.join(map(literal, files))}], "
                             "hive_partitioning = false)")
                counts[name] = rows
            else:
                conn.execute(f"CREATE TABLE {dst} AS SELECT * FROM {ident(source)}.{ident(schema)}.{ident(table)}")
                [(counts[name],)] = conn.execute(f"SELECT count(*) FROM {dst}").fetchall()
        conn.execute(
            f"CREATE TABLE {ident(alias)}.main.snapshot_info AS "
            "SELECT ?::TIMESTAMP AS as_of, ?::TIMESTAMP AS published_at, ?::VARCHAR AS source",
            [as_of, datetime.now(UTC).replace(tzinfo=None), source],
        )
    return counts


def _segments(conn: duckdb.DuckDBPyConnection, table: str, folder: str) -> tuple[list[str], int]:
    """(segment files, rows) holding every row of `table`, after writing
    the rows appended since the last publication (and merging a full tier).
    No files for an empty table. Segments of another snapshot path do not
    count."""
    live = "FROM snapshot_segments WHERE table_name = ? AND retired_at IS NULL AND starts_with(path, ?)"
    params = [table, folder + os.sep]
    [(total,)] = conn.execute(f"SELECT count(*) FROM {ident(table)}").fetchall()
    for _ in range(2):
        [(exported, high)] = conn.execute(f"SELECT coalesce(sum(rows), 0), coalesce(max(last_rowid), -1) {live}",
                                          params).fetchall()
        # An append-only table's rowids run from 0 without gaps, so the rows
        # up to the high-water mark are exactly those exported.
        if exported != high + 1 or exported > total:
            _retire(conn, f"table_name = ? AND retired_at IS NULL AND starts_with(path, ?)", params)
            high = -1
        if total > high + 1:
            _write(conn, table, folder, f"SELECT rowid AS sm_rowid, * FROM {ident(table)} WHERE rowid > {int(high)}")
        [(exported,)] = conn.execute(f"SELECT coalesce(sum(rows), 0) {live}", params).fetchall()
        if exported == total:
            break
        # Rows were deleted or rewritten: start over from the whole table.
        _retire(conn, f"table_name = ? AND retired_at IS NULL AND starts_with(path, ?)", params)
    else:
        raise RuntimeError(f"snapshot segments of {table} hold {exported} rows, the table {total}")
    _merge_full_tier(conn, table, folder, params)
    return [p for (p,) in conn.execute(f"SELECT path {live} ORDER BY first_rowid", params).fetchall()], total


def _recent(as_of: datetime) -> date:
    """The first day of the month before `as_of`: units from it on are days."""
    return (as_of.date().replace(day=1) - timedelta(days=1)).replace(day=1)


def _units(conn: duckdb.DuckDBPyConnection, table: str, recent: date) -> dict[str, dict]:
    """unit -> (unit, first, last, signature) of `table`; the signature also
    carries the table's columns, so that a new column rewrites every unit
    (one file's schema is taken for all of them)."""
    warehouse.run_script(conn, "analytics/unit_macros.sql")
    [(columns,)] = conn.execute(
        "SELECT md5(string_agg(column_name || ' ' || data_type, ',' ORDER BY column_index)) FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?", [table]).fetchall()
    return {r["unit"]: {**r, "signature": f"{columns[:12]}:{r['signature']}"}
            for r in warehouse.query(conn, UNIT_TABLES[table][0], recent=recent)}


def _signatures(conn: duckdb.DuckDBPyConnection, table: str, recent: date) -> dict[str, str]:
    return {unit: r["signature"] for unit, r in _units(conn, table, recent).items()}


def _unit_files(conn: duckdb.DuckDBPyConnection, table: str, folder: str,
                recent: date) -> tuple[list[str], int, dict[str, str]]:
    """(live files, their rows, the signature of each unit) of `table`, after
    writing each unit whose signature is not the one published. No files when
    the table is empty: it is copied."""
    units = _units(conn, table, recent)
    prefix = os.path.join(folder, table) + os.sep
    live = "FROM snapshot_unit_files WHERE table_name = ? AND retired_at IS NULL AND starts_with(path, ?)"
    published = dict(conn.execute(f"SELECT unit, signature {live}", [table, prefix]).fetchall())
    current = {unit for unit, u in units.items() if published.get(unit) == u["signature"]}
    for unit in set(published) - current:  # gone, or written again below
        _retire_unit(conn, table, unit, prefix)
    changed = [u for unit, u in sorted(units.items()) if unit not in current]
    if changed:
        _write_units(conn, table, folder, changed, recent, every=len(changed) == len(units))
    files = conn.execute(f"SELECT path, rows {live} AND rows > 0 ORDER BY unit", [table, prefix]).fetchall()
    return [p for p, _ in files], sum(r for _, r in files), {u: r["signature"] for u, r in units.items()}


def _write_units(conn: duckdb.DuckDBPyConnection, table: str, folder: str, units: list[dict], recent: date,
                 every: bool) -> None:
    """Writes the rows of `units` (`every` unit of the table: no filter) in
    one pass, a file per unit (a first publication has dozens), and records
    them; a unit without rows is recorded with no file."""
    _, unit_of, days = UNIT_TABLES[table]
    os.makedirs(os.path.join(folder, table), exist_ok=True)
    scratch = os.path.join(folder, table, f".{uuid.uuid4().hex}.tmp")
    where = days.format(first=f"{literal(min(u['first'] for u in units).isoformat())}::DATE",
                        last=f"{literal(max(u['last'] for u in units).isoformat())}::DATE")
    key = f"sm_unit({unit_of}, {literal(recent.isoformat())}::DATE)"
    if not every:
        where += f" AND {key} IN ({', '.join(literal(u['unit']) for u in units)})"
    try:
        conn.execute(f"COPY (SELECT *, {key} AS sm_unit_key FROM {ident(table)} WHERE {where}) "
                     f"TO {literal(scratch)} (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (sm_unit_key))")
        created = datetime.now(UTC).replace(tzinfo=None)
        for u in units:
            part = os.path.join(scratch, f"sm_unit_key={u['unit']}")
            parts = sorted(os.listdir(part)) if os.path.isdir(part) else []
            for name in parts or [None]:
                path = os.path.join(folder, table, f"{u['unit']}-{uuid.uuid4().hex[:12]}.parquet")
                rows = 0
                if name:
                    os.replace(os.path.join(part, name), path)
                    [(rows,)] = conn.execute(f"SELECT count(*) FROM read_parquet({literal(path)})").fetchall()
                conn.execute("INSERT INTO snapshot_unit_files VALUES (?, ?, ?, ?, ?, ?, NULL)",
                             [table, path, u["unit"], u["signature"], rows, created])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _retire_unit(conn: duckdb.DuckDBPyConnection, table: str, unit: str, prefix: str) -> None:
    conn.execute("UPDATE snapshot_unit_files SET retired_at = ? "
                 "WHERE table_name = ? AND unit = ? AND retired_at IS NULL AND starts_with(path, ?)",
                 [datetime.now(UTC).replace(tzinfo=None), table, unit, prefix])


def _write(conn: duckdb.DuckDBPyConnection, table: str, folder: str, query: str) -> None:
    """Writes the rows of `query` (the table's columns after `sm_rowid`) to
    a new segment, published by rename, and records it."""
    [(rows, first, last)] = conn.execute(f"SELECT count(*), min(sm_rowid), max(sm_rowid) FROM ({query})").fetchall()
    if not rows:
        return
    os.makedirs(os.path.join(folder, table), exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.parquet"
    path, tmp = os.path.join(folder, table, name), os.path.join(folder, table, f".{name}.tmp")
    # zstd: 23 bytes per ledger event against 45 with the default snappy, written as fast.
    conn.execute(f"COPY (SELECT * EXCLUDE (sm_rowid) FROM ({query})) TO {literal(tmp)} "
                 "(FORMAT parquet, COMPRESSION zstd)")
    os.replace(tmp, path)
    conn.execute("INSERT INTO snapshot_segments VALUES (?, ?, ?, ?, ?, ?, NULL)",
                 [table, path, first, last, rows, datetime.now(UTC).replace(tzinfo=None)])


def _merge_full_tier(conn: duckdb.DuckDBPyConnection, table: str, folder: str, params: list) -> None:
    """Size tiers (by the number of digits of the row count): MERGE_FANOUT
    live segments of one tier become one segment of a higher tier, so a
    table has at most a few dozen segments and each row is rewritten about
    once per tier. The merged segment keeps its parts' rowid range."""
    full = conn.execute(
        "SELECT list(path ORDER BY first_rowid), min(first_rowid), max(last_rowid) FROM snapshot_segments "
        "WHERE table_name = ? AND retired_at IS NULL AND starts_with(path, ?) GROUP BY length(rows::VARCHAR) "
        "HAVING count(*) >= ? ORDER BY min(rows) LIMIT 1", [*params, MERGE_FANOUT]).fetchall()
    for paths, first, last in full:
        files = ", ".join(map(literal, paths))
        # sm_rowid carries the range only: min and max of the merged rows.
        _write(conn, table, folder, f"SELECT CASE WHEN file_row_number = 0 AND filename = {literal(paths[0])} "
                                    f"THEN {int(first)} ELSE {int(last)} END AS sm_rowid, * EXCLUDE (filename, file_row_number) "
                                    f"FROM read_parquet([{files}], filename = true, file_row_number = true)")
        _retire(conn, "path IN (SELECT unnest(?::VARCHAR[]))", [paths])


def _retire(conn: duckdb.DuckDBPyConnection, where: str, params: list) -> None:
    conn.execute(f"UPDATE snapshot_segments SET retired_at = ? WHERE {where}",
                 [datetime.now(UTC).replace(tzinfo=None), *params])


def _collect_garbage(conn: duckdb.DuckDBPyConnection, folder: str) -> None:
    """Deletes segment and unit files retired more than RETAIN ago, and
    files never recorded (a publication that failed after writing them, and
    its scratch folders) written more than RETAIN ago. A file written long
    ago and retired now stays: a reader's open snapshot may name it."""
    cutoff = datetime.now(UTC).replace(tzinfo=None) - RETAIN
    keep = "retired_at IS NULL OR retired_at >= ?"
    live = {p for (p,) in conn.execute(f"SELECT path FROM snapshot_segments WHERE {keep} UNION ALL "
                                       f"SELECT path FROM snapshot_unit_files WHERE {keep}", [cutoff, cutoff]).fetchall()}
    for table in (*APPEND_ONLY, *UNIT_TABLES):
        sub = os.path.join(folder, table)
        if not os.path.isdir(sub):
            continue
        for name in os.listdir(sub):
            path = os.path.join(sub, name)
            if path not in live and datetime.fromtimestamp(os.path.getmtime(path), UTC).replace(tzinfo=None) < cutoff:
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(path)
    conn.execute("DELETE FROM snapshot_segments WHERE retired_at < ?", [cutoff])
    conn.execute("DELETE FROM snapshot_unit_files WHERE retired_at < ?", [cutoff])


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
