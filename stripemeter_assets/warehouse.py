"""The DuckDB warehouse: opening it with the schema in place, running SQL
files statement by statement with named parameters."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from stripemeter_assets.sqlfiles import SQL_ROOT, load_sql

DEFAULT_MEMORY_LIMIT = "2GB"
_PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")


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


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    for path in sorted((SQL_ROOT / "schema").glob("*.sql")):
        run_script(conn, f"schema/{path.name}")


@contextlib.contextmanager
def connect(path: str, *, memory_limit: str | None = None, threads: int | None = None,
            read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with UTC session time and, unless read-only, the schema."""
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {"memory_limit": memory_limit or os.environ.get("STRIPEMETER_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)}
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
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
