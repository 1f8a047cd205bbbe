"""Ledger helpers shared by the bench scripts: the asset's ingest path with a
per-phase profile, and the synthetic files the benches load.

The ingest is exactly what the `usage_events` asset runs: `list_ready_files`,
`warehouse.connect` (schema), `ingest_batch`. The profile wraps module-level
functions of `stripemeter_assets.ledger` (the statements themselves are the
package's, run in the same order); it costs microseconds per statement.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from stripemeter_assets.ledger import batch as batch_mod
from stripemeter_assets.ledger import landing as landing_mod
from stripemeter_assets.ledger.key_runs import compacted_through, write_run_if_due
from stripemeter_assets.ledger.landing import list_ready_files
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import literal, load_sql
from stripemeter_assets.warehouse import connect, params_named, statements, transaction

# The bulk data covers January 2025; "now" is just after it (the January
# period is not closed yet: it closes at period_end + 48 h).
START = "2025-01-01"
DAYS = 30
NOW = datetime(2025, 2, 1, 0, 0, tzinfo=UTC)
JSON_COLUMNS = ("{'tenantId': 'VARCHAR', 'metric': 'VARCHAR', 'customerRef': 'VARCHAR', "
                "'quantity': 'DECIMAL(18, 1)', 'ts': 'VARCHAR', 'idempotencyKey': 'VARCHAR'}")


class Profile:
    """Seconds per phase of one `ingest_batch` call."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._installed: list[tuple[object, str, object]] = []

    def add(self, key: str, seconds: float) -> None:
        self.phases[key] = self.phases.get(key, 0.0) + seconds

    def _patch(self, module, name, new) -> None:
        self._installed.append((module, name, getattr(module, name)))
        setattr(module, name, new)

    def _timed(self, label: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(label, time.perf_counter() - start)
        return timed

    def install(self) -> None:
        original_transaction, original_query = batch_mod.transaction, batch_mod.query
        prof = self

        def run_script(conn, name, **params):
            for i, stmt in enumerate(statements(load_sql(name))):
                start = time.perf_counter()
                conn.execute(stmt, params_named(stmt, params))
                prof.add(f"{name.removeprefix('ledger/').removesuffix('.sql')}#{i + 1}", time.perf_counter() - start)

        def query(conn, name, **params):
            return prof._timed(name.removeprefix("ledger/").removesuffix(".sql"), original_query)(conn, name, **params)

        @contextlib.contextmanager
        def transaction(conn):
            with original_transaction(conn):
                yield
                prof._commit_start = time.perf_counter()
            prof.add("COMMIT", time.perf_counter() - prof._commit_start)

        # The in-transaction script runner and the query helper are looked up
        # in the batch module's namespace, so the wrappers take their place.
        self._patch(batch_mod, "run_script", run_script)
        self._patch(batch_mod, "query", query)
        self._patch(batch_mod, "_stage_file",
                    self._timed("stage files (validate.sql)", batch_mod._stage_file))
        self._patch(landing_mod, "_sha256_file",
                    self._timed("sha256 of files (Python)", landing_mod._sha256_file))
        self._patch(batch_mod, "prepare_session", self._timed("prepare_session", batch_mod.prepare_session))
        self._patch(batch_mod, "transaction", transaction)

    def uninstall(self) -> None:
        for module, name, value in reversed(self._installed):
            setattr(module, name, value)
        self._installed.clear()


def ingest_folder(db: str, folder: str, *, batch_id: str, memory_limit: str = "2GB", profile: bool = True,
                  now: datetime = NOW, config: Config | None = None, threads: int | None = None) -> dict:
    """The asset's path over every ready file of `folder`; times and counts."""
    prof = Profile()
    if profile:
        prof.install()
    t0 = time.perf_counter()
    files = list_ready_files(folder, settle=0)
    t1 = time.perf_counter()
    with connect(db, memory_limit=memory_limit, threads=threads) as conn:
        conn.execute("SET enable_progress_bar = false")
        t2 = time.perf_counter()
        result = batch_mod.ingest_batch(conn, files, batch_id=batch_id, config=config or Config(), now=now)
        t3 = time.perf_counter()
        ledger = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    t4 = time.perf_counter()
    prof.uninstall()
    statuses = {f.status for f in result.files}
    return {
        "files": len(result.files),
        "statuses": sorted(statuses),
        "rows_total": result.total("rows_total"),
        "rows_loaded": result.total("rows_loaded"),
        "rows_duplicate": result.total("rows_duplicate"),
        "rows_quarantined": result.total("rows_quarantined"),
        "late_pending": result.late_pending,
        "ledger_rows": ledger,
        "list_s": t1 - t0,
        "connect_s": t2 - t1,
        "ingest_batch_s": t3 - t2,
        "close_s": t4 - t3,
        "end_to_end_s": t4 - t0,
        "phases": prof.phases,
    }


def bare_query(sql: str, db: str = ":memory:", memory_limit: str = "2GB") -> dict:
    """One plain DuckDB statement, same memory limit, timed."""
    con = duckdb.connect(db, config={"memory_limit": memory_limit})
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    rows = con.execute(sql).fetchall()
    elapsed = time.perf_counter() - start
    con.close()
    return {"seconds": elapsed, "result": rows[0][0] if rows and rows[0] else None}


def convert(src_jsonl: str | Path, dest: str | Path, fmt: str) -> None:
    """The JSONL bulk file rewritten as csv | parquet | jsonl.gz by DuckDB COPY.
    Parquet gets typed columns, as a producer would write them (DECIMAL
    quantity, TIMESTAMPTZ ts); CSV and JSONL keep the same text."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    src = f"read_json({literal(str(src_jsonl))}, format = 'newline_delimited', columns = {JSON_COLUMNS})"
    if fmt == "csv":
        opts = "FORMAT csv, HEADER true"
        select = f"SELECT * FROM {src}"
    elif fmt == "parquet":
        opts = "FORMAT parquet"
        select = f"SELECT * REPLACE (ts::TIMESTAMPTZ AS ts) FROM {src}"
    elif fmt == "jsonl.gz":
        opts = "FORMAT json, COMPRESSION gzip"
        select = f"SELECT * FROM {src}"
    else:
        raise ValueError(fmt)
    con.execute(f"COPY ({select}) TO {literal(str(dest))} ({opts})")
    con.close()


def bare_count_sql(path: str | Path, fmt: str) -> str:
    p = literal(str(path))
    if fmt in ("jsonl", "jsonl.gz"):
        return f"SELECT count(*) FROM read_json({p})"
    if fmt == "csv":
        return f"SELECT count(*) FROM read_csv({p})"
    return f"SELECT count(*) FROM read_parquet({p})"


def bare_load_sql(path: str | Path, fmt: str) -> str:
    """Every column materialized into a table: the 'just load it' cost."""
    p = literal(str(path))
    reader = {"jsonl": f"read_json({p})", "jsonl.gz": f"read_json({p})",
              "csv": f"read_csv({p})", "parquet": f"read_parquet({p})"}[fmt]
    return f"CREATE TABLE t AS SELECT * FROM {reader}; SELECT count(*) FROM t"


def floor_sql(path: str | Path) -> str:
    """The least any ledger load must do, with none of the checks: parse the
    JSONL natively, cast quantity and ts, derive SHA-256 keys for keyless
    rows and write a ledger-shaped table into the file. No validation,
    quarantine, row numbers, exact-decimal reading or dedupe."""
    p = literal(str(path))
    columns = ("{'tenantId': 'VARCHAR', 'metric': 'VARCHAR', 'customerRef': 'VARCHAR', 'quantity': 'VARCHAR', "
               "'ts': 'VARCHAR', 'idempotencyKey': 'VARCHAR'}")
    return f"""
        CREATE TABLE t AS
        SELECT tenantId, metric, customerRef, q AS quantity, t AS ts,
               coalesce(idempotencyKey, substr(sha256(concat_ws(chr(31), tenantId, metric, customerRef, '',
                        epoch_us(t)::VARCHAR, q::VARCHAR)), 1, 32)) AS idempotency_key
        FROM (SELECT *, TRY_CAST(quantity AS DECIMAL(38, 9)) AS q, TRY_CAST(ts AS TIMESTAMPTZ)::TIMESTAMP AS t
              FROM read_json({p}, format = 'newline_delimited', columns = {columns}));
        SELECT count(*) FROM t"""


def build_ledger(db: str, events: int, *, memory_limit: str = "2GB") -> dict:
    """A ledger of `events` rows written straight into `events` by SQL, for
    measuring how per-batch costs scale with the ledger's size (the ingest
    itself is too slow to build 100M rows on this machine in a bench run).
    Same shape and value spread as `write_bulk_jsonl` data: 5 tenants, 3
    metrics, 10k customers over January 2025, half the keys derived; the
    key_hash of each row is its real `sm_key_hash`, so dedupe probes real
    values. One landing_files row per 10M events, and each 10M written as a
    run of event_keys, as a batch of 10M events leaves them."""
    start = time.perf_counter()
    with connect(db, memory_limit=memory_limit) as conn:
        conn.execute("SET enable_progress_bar = false")
        step = 10_000_000
        for lo in range(0, events, step):
            hi = min(events, lo + step)
            file_seq = conn.execute("SELECT nextval('landing_file_seq')").fetchone()[0]
            conn.execute(f"""
                INSERT INTO events
                SELECT tenant_id, metric, customer_ref, NULL, quantity, ts, key,
                       (md5_number(tenant_id || chr(31) || key) >> 64)::UBIGINT, i % 100 >= 50, NULL,
                       'synthetic-{file_seq}.jsonl', i - {lo} + 1, 'synthetic-{file_seq}',
                       ({file_seq}::BIGINT << 32) | (i - {lo} + 1), TIMESTAMP '2025-02-01'
                FROM (
                    SELECT i, 'tenant_' || (i % 5) AS tenant_id,
                           ['api_calls', 'storage_gb', 'seats'][1 + (i % 3)::INT] AS metric,
                           'cus_' || lpad(((i * 7919) % 10000)::VARCHAR, 6, '0') AS customer_ref,
                           ((i * 31) % 1000)::DECIMAL(38, 9) / 10 AS quantity,
                           TIMESTAMP '2025-01-01' + INTERVAL (i % (30 * 86400)) SECOND AS ts,
                           CASE WHEN i % 100 < 50 THEN 'syn_' || i ELSE md5(i::VARCHAR)[:32] END AS key
                    FROM range({lo}, {hi}) t(i))""")
            conn.execute("INSERT INTO landing_files VALUES (?, ?, ?, 'jsonl', 0, ?, ?, 0, 0, 'loaded', NULL, ?, "
                         "TIMESTAMP '2025-02-01')", [file_seq, f"synthetic-{file_seq}.jsonl", f"synthetic-{file_seq}",
                                                    hi - lo, hi - lo, f"synthetic-{file_seq}"])
            with transaction(conn):
                write_run_if_due(conn, compacted_through(conn))
            conn.execute("CHECKPOINT")
        conn.execute("""INSERT INTO watermarks SELECT tenant_id, metric, customer_ref, max(ts), TIMESTAMP '2025-02-01'
                        FROM events GROUP BY ALL ON CONFLICT DO NOTHING""")
    return {"seconds": time.perf_counter() - start, "mb": Path(db).stat().st_size / 2**20}
