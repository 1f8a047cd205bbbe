"""One ingest batch: stage and validate every file, then dedupe and append
in a single DuckDB transaction (all of the batch or none of it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from stripemeter_assets import settings
from stripemeter_assets.ledger.catalog import default_lateness_us, load_metric_catalog
from stripemeter_assets.ledger.fastpath import stage_clean_file
from stripemeter_assets.ledger.key_runs import compacted_through, write_run_if_due
from stripemeter_assets.ledger.formats import (FIRST_ROW, MAX_LINE_BYTES, SHORT_LINE_BYTES, UnreadableFile,
                                              raw_text, rows_sql)
from stripemeter_assets.ledger.landing import LandingFile, local_copy
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import literal, render_sql
from stripemeter_assets.warehouse import query, run_script, transaction

MAX_ERROR_CHARS = 500
# Errors in our own SQL must fail the run, never pass for a bad file.
_OUR_BUGS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


@dataclass
class FileResult:
    path: str
    format: str
    status: str  # loaded | rejected | skipped
    content_hash: str = ""
    rows_total: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    error: str | None = None
    reader: str = "exact"  # typed (ledger/fastpath.py) | exact


@dataclass
class BatchResult:
    batch_id: str
    files: list[FileResult] = field(default_factory=list)
    days: list[dict] = field(default_factory=list)  # day, events, late_within_window
    late_pending: int = 0

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.files)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)


def prepare_session(conn: duckdb.DuckDBPyConnection, config: Config, now: datetime) -> None:
    # Row numbers come from the order rows are staged in (see _number_rows).
    conn.execute("SET preserve_insertion_order = true")
    run_script(conn, "ledger/staging.sql")
    load_metric_catalog(conn, config)
    # A macro rather than a join with metric_catalog: see validate.sql.
    negative = ", ".join(literal(m.name) for m in config.metrics.values() if m.allow_negative)
    test = f"metric IN ({negative})" if negative else "false"
    conn.execute(f"CREATE OR REPLACE TEMP MACRO sm_allows_negative(metric) AS ({test})")
    skew = timedelta(hours=config.max_clock_skew_hours)
    conn.execute("SET VARIABLE sm_max_ts = ?::TIMESTAMP", [(now + skew).replace(tzinfo=None)])
    # Nothing before the first partition is ever counted: such events are quarantined, not stored unseen.
    conn.execute("SET VARIABLE sm_min_ts = ?::TIMESTAMP", [settings.partitions_start()])
    conn.execute("""CREATE OR REPLACE TEMP TABLE batch_files (
        file_seq BIGINT, path VARCHAR, content_hash VARCHAR, format VARCHAR, size_bytes BIGINT,
        status VARCHAR, error VARCHAR, reader VARCHAR)""")


def _stage_rows(conn: duckdb.DuckDBPyConnection, local: str, fmt: str, file_seq: int) -> None:
    options = {"parallel": True, "max_line": SHORT_LINE_BYTES}
    while True:
        try:
            conn.execute(render_sql("ledger/validate.sql", rows=rows_sql(conn, local, fmt, **options),
                                    raw_text=raw_text(fmt), file_seq=str(int(file_seq)),
                                    quantity_value="sm_decimal(quantity)", ts_value="sm_timestamp(ts)"))
            break
        except duckdb.Error as exc:
            # The failed INSERT staged nothing; read the file again the slower way.
            if "Maximum line size" in str(exc) and options["max_line"] < MAX_LINE_BYTES:
                options["max_line"] = MAX_LINE_BYTES
            elif fmt == "csv" and "quoted new lines" in str(exc) and options["parallel"]:
                options["parallel"] = False
            else:
                raise
    if fmt in FIRST_ROW:
        _number_rows(conn, file_seq, FIRST_ROW[fmt])


def _number_rows(conn: duckdb.DuckDBPyConnection, file_seq: int, first_row: int) -> None:
    """Numbers a positional reader's rows by their rowids in `staged`. DuckDB
    keeps the source order through an INSERT of a single-source SELECT/WHERE
    query (its documented order preservation, with preserve_insertion_order),
    so validate.sql and the readers must never join; a test reads a large file
    in parallel and checks every line's number."""
    count, low, high = conn.execute("SELECT count(*), min(rowid), max(rowid) FROM staged WHERE file_seq = ?",
                                    [file_seq]).fetchone()
    if count and high - low + 1 != count:
        raise RuntimeError(f"staged rows of file {file_seq} are not contiguous ({count} rows in rowids {low}..{high})")
    run_script(conn, "ledger/number_rows.sql", file_seq=file_seq, first_row=first_row - (low or 0))


def _stage_file(conn: duckdb.DuckDBPyConnection, file: LandingFile, file_seq: int, seen: dict[str, str]) -> str:
    """Stages one file's rows; returns its status (loaded | rejected | skipped).
    `seen`: content hash -> path of the files this batch loaded so far."""
    with local_copy(file) as (local, content_hash):
        status, error, reader = "loaded", None, "exact"
        if earlier := seen.get(content_hash) or _loaded_as(conn, content_hash):
            status, error = "skipped", f"same content as {earlier}, already loaded"
        else:
            try:
                if stage_clean_file(conn, local, file.format, file_seq):
                    reader = "typed"
                    if file.format in FIRST_ROW:
                        _number_rows(conn, file_seq, FIRST_ROW[file.format])
                else:
                    _stage_rows(conn, local, file.format, file_seq)
            except _OUR_BUGS:
                raise
            except (duckdb.Error, UnreadableFile, UnicodeDecodeError) as exc:
                # The failed INSERT is atomic, so no row of this file stays staged.
                status, error = "rejected", f"{type(exc).__name__}: {exc}".replace(local, file.path)[:MAX_ERROR_CHARS]
            else:
                seen[content_hash] = file.path
        conn.execute("INSERT INTO batch_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                     [file_seq, file.path, content_hash, file.format, file.size, status, error, reader])
    return status


def _loaded_as(conn: duckdb.DuckDBPyConnection, content_hash: str) -> str | None:
    """The path an earlier batch loaded this content from, found through the
    index on landing_files.content_hash: reading every loaded file's hash
    instead cost 0.9 s a batch at 1M landing files."""
    [(path,)] = conn.execute("SELECT any_value(path) FROM landing_files WHERE content_hash = ? AND status = 'loaded'",
                             [content_hash]).fetchall()
    return path


def ingest_batch(conn: duckdb.DuckDBPyConnection, files: list[LandingFile], *, batch_id: str,
                 config: Config, now: datetime) -> BatchResult:
    """Loads `files` as one batch; returns per-file counts and what changed."""
    naive_now = now.replace(tzinfo=None)
    prepare_session(conn, config, now)
    # One statement for every file's seq: each nextval outside a transaction
    # is a commit of its own, with its sync.
    seqs = sorted(seq for (seq,) in conn.execute("SELECT nextval('landing_file_seq') FROM range(?)",
                                                 [len(files)]).fetchall())
    seen: dict[str, str] = {}
    statuses = {_stage_file(conn, file, file_seq, seen) for file, file_seq in zip(files, seqs, strict=True)}
    # The batch's events are the ledger's tail, from its first file's seq on.
    first_seq = seqs[0] << 32 if seqs else 0
    with transaction(conn):
        through = compacted_through(conn)
        run_script(conn, "ledger/candidates.sql", compacted_through=through)
        # A batch of new keys (the usual one) skips what only repeats need.
        repeats = conn.execute("SELECT EXISTS (FROM ledger_candidates) OR EXISTS (FROM batch_repeats)").fetchone()[0]
        if repeats:
            run_script(conn, "ledger/verdicts.sql", compacted_through=through)
        run_script(conn, "ledger/append.sql", batch_id=batch_id, now=naive_now)
        if repeats:
            run_script(conn, "ledger/conflicts.sql", batch_id=batch_id, now=naive_now)
        write_run_if_due(conn, through)
        run_script(conn, "ledger/batch_events.sql", batch_id=batch_id, first_seq=first_seq)
        run_script(conn, "ledger/late_events.sql", batch_id=batch_id, now=naive_now,
                   default_lateness_us=default_lateness_us(config))
        days = query(conn, "ledger/batch_summary.sql")
        late_pending = conn.execute("SELECT count(*) FROM batch_late").fetchone()[0]
        conn.execute("INSERT INTO ingest_batches VALUES (?, ?, ?, false, ?)",
                     [batch_id, [d["day"] for d in days], batch_id, naive_now])
        run_script(conn, "ledger/watermarks.sql", now=naive_now)
        conn.execute("DROP TABLE batch_events; DROP TABLE batch_late")
        if "rejected" in statuses:
            run_script(conn, "ledger/rejected.sql", batch_id=batch_id, now=naive_now)
        rows = conn.execute(
            "SELECT l.path, l.format, l.status, l.content_hash, l.rows_total, l.rows_loaded, l.rows_duplicate, "
            "l.rows_quarantined, l.error, f.reader FROM landing_files l JOIN batch_files f USING (file_seq) "
            "WHERE l.batch_id = ? ORDER BY file_seq", [batch_id]
        ).fetchall()
    conn.execute("DROP TABLE verdicts; DROP TABLE ledger_candidates; DROP TABLE IF EXISTS ledger_matches; "
                 "DROP TABLE batch_repeats; DROP TABLE staged; DROP TABLE batch_files")
    return BatchResult(batch_id=batch_id, files=[FileResult(*r) for r in rows], days=days,
                       late_pending=late_pending)
