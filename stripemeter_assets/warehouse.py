"""The DuckDB warehouse: opening it with the schema in place, and the
project's SQL files (shipped in the package as `stripemeter_assets.sql`,
`sql/` in the checkout), run statement by statement with named parameters."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.resources
import re
from functools import cache
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from stripemeter_assets import settings

DEFAULT_MEMORY_LIMIT = settings.DEFAULT_MEMORY_LIMIT
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
SQL = importlib.resources.files("stripemeter_assets.sql")
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


@cache
def load_sql(name: str) -> str:
    """Text of `sql/<name>`, e.g. `load_sql("ledger/validate.sql")`."""
    return SQL.joinpath(name).read_text()


def render_sql(name: str, **params: str) -> str:
    """A SQL file with `{{placeholders}}` filled in one pass, so text inside
    a filled value (a file name, a CSV header) is never read as a
    placeholder. Only for SQL fragments and literals the code itself builds
    (see `literal`); values go as `?` or `$name`."""
    return _PLACEHOLDER.sub(lambda m: params[m.group(1)], load_sql(name))


def literal(value: str) -> str:
    """A SQL string literal; DuckDB strings know no backslash escapes."""
    return "'" + value.replace("'", "''") + "'"


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def statements(text: str) -> list[str]:
    """Split a SQL file on statement-ending semicolons (our files keep
    semicolons out of literals and comments)."""
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip() and not _only_comments(s)]


def _only_comments(stmt: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in stmt.splitlines())


def params_named(stmt: str, params: dict[str, Any]) -> dict[str, Any] | None:
    code = "\n".join(line.split("--", 1)[0] for line in stmt.splitlines())
    return {k: params[k] for k in _PARAM.findall(code) if k in params} or None


def run_script(conn: duckdb.DuckDBPyConnection, name: str, **params: Any) -> None:
    """Runs every statement of `sql/<name>`, each with the `$params` it names."""
    for stmt in statements(load_sql(name)):
        conn.execute(stmt, params_named(stmt, params))


def query(conn: duckdb.DuckDBPyConnection, name: str, **params: Any) -> list[dict[str, Any]]:
    """Rows of the single query in `sql/<name>`, as dicts."""
    stmt = load_sql(name)
    cur = conn.execute(stmt, params_named(stmt, params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def create_temp_table(conn: duckdb.DuckDBPyConnection, table: str, name: str, **params: Any) -> None:
    """TEMP `table` holding the rows of the query in `sql/<name>`."""
    stmt = load_sql(name)
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {stmt}", params_named(stmt, params))


# The ingest's macros live in the warehouse with the schema rather than as
# TEMP macros of each connection: creating them cost 7 ms a batch, and a
# batch of one event (an API call's file) should cost little more than its row.
SCHEMA_MACROS = ("ledger/macros.sql",)


@cache
def _schema_files() -> tuple[tuple[str, ...], str]:
    """The schema's files in order, and a fingerprint of their text."""
    names = tuple(sorted(f"schema/{p.name}" for p in SQL.joinpath("schema").iterdir() if p.name.endswith(".sql")))
    names += SCHEMA_MACROS
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + load_sql(name).encode() + b"\0")
    return names, digest.hexdigest()


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Runs the schema's files unless this warehouse already holds what they
    create: running them costs 15-20 ms a connection, checking one row 1 ms,
    and every run, request and batch connects (sql/schema/000_schema.sql)."""
    names, fingerprint = _schema_files()
    with contextlib.suppress(duckdb.CatalogException):
        if conn.execute("SELECT fingerprint FROM schema_fingerprint").fetchall() == [(fingerprint,)]:
            return
    for name in names:
        run_script(conn, name)
    with transaction(conn):
        conn.execute("DELETE FROM schema_fingerprint")
        conn.execute("INSERT INTO schema_fingerprint VALUES (?, now())", [fingerprint])


@contextlib.contextmanager
def connect(path: str, *, memory_limit: str | None = None, threads: int | None = None,
            read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with UTC session time and, unless read-only, the schema."""
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"memory_limit": memory_limit or settings.memory_limit()}
    if threads:
        config["threads"] = threads
    conn = duckdb.connect(path, read_only=read_only, config=config)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        if not read_only:
            ensure_schema(conn)
        yield conn
    finally:
        conn.close()


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[None]:
    """All of the block or none of it; `commit=False` rolls back even on
    success (a dry run reports what it would write)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if commit else "ROLLBACK")


def temp_table_from_rows(conn: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]],
                         schema: pa.Schema) -> None:
    """TEMP `name` holding `rows`, handed over through Arrow (fast for many rows)."""
    view = f"_{name}_arrow"
    conn.register(view, pa.Table.from_pylist(rows, schema=schema))
    try:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")
    finally:
        conn.unregister(view)
