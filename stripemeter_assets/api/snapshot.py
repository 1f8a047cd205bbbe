"""Reads of the published analyst snapshot (`STRIPEMETER_ANALYTICS`).

Every answer carries the snapshot's as-of time: the API shows the billing
data as of the last publication, never a half-written warehouse. A new
read-only connection per read sees the latest published file (publication
swaps it atomically).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import duckdb

from stripemeter_assets.ledger.keys import canonical_quantity
from stripemeter_assets.warehouse import load_sql


class SnapshotMissing(Exception):
    """No analyst snapshot published yet (503)."""


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """Exact decimals as strings, UTC times as RFC 3339 with Z."""
    if isinstance(value, Decimal):
        return canonical_quantity(value)
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class Snapshot:
    """One open read-only connection to the snapshot."""

    def __init__(self, conn: duckdb.DuckDBPyConnection):
        self.conn = conn
        row = conn.execute(load_sql("api/snapshot_info.sql")).fetchone()
        self.as_of: datetime = row[0].replace(tzinfo=UTC)
        self.published_at: datetime = row[1].replace(tzinfo=UTC)

    def rows(self, sql_name: str, **params: Any) -> list[dict[str, Any]]:
        """The query's rows with camelCase keys and JSON-ready values."""
        cur = self.conn.execute(load_sql(sql_name), params)
        names = [camel(d[0]) for d in cur.description]
        return [{n: jsonable(v) for n, v in zip(names, row)} for row in cur.fetchall()]

    def scalar(self, sql_name: str, **params: Any) -> Any:
        return self.conn.execute(load_sql(sql_name), params).fetchone()[0]

    def pairs(self, sql_name: str) -> list[tuple[Any, Any]]:
        return self.conn.execute(load_sql(sql_name)).fetchall()

    def has_table(self, name: str) -> bool:
        """A table, or a view over the snapshot's Parquet files (analytics/snapshot.py)."""
        return bool(self.conn.execute(
            "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND table_name = $name "
            "UNION ALL SELECT 1 FROM duckdb_views() WHERE database_name = current_database() AND view_name = $name",
            {"name": name}).fetchone())


@contextmanager
def open_snapshot(path: str) -> Iterator[Snapshot]:
    if not os.path.exists(path):
        raise SnapshotMissing(f"no analyst snapshot published yet at {os.path.basename(path)} "
                              "(run `stripemeter catch-up`)")
    conn = duckdb.connect(path, read_only=True)
    try:
        conn.execute("SET TimeZone = 'UTC'")
        yield Snapshot(conn)
    finally:
        conn.close()


def events(snap: Snapshot, tenant: str, customer: str | None, limit: int) -> list[dict[str, Any]]:
    rows = snap.rows("api/events.sql", tenant=tenant, customer=customer, limit=limit)
    for row in rows:
        if row["meta"] is not None:
            row["meta"] = json.loads(row["meta"])
    return rows


def usage(snap: Snapshot, tenant: str, customer: str) -> list[dict[str, Any]]:
    return snap.rows("api/usage.sql", tenant=tenant, customer=customer)


def projection(snap: Snapshot, tenant: str, customer: str) -> list[dict[str, Any]]:
    return snap.rows("api/projection.sql", tenant=tenant, customer=customer)


def daily(snap: Snapshot, tenant: str, customer: str) -> list[dict[str, Any]]:
    return snap.rows("api/daily_usage.sql", tenant=tenant, customer=customer)
