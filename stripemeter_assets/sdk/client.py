"""`StripeMeterClient`: the Python SDK (DESIGN §1, ORIGINAL.md "Python SDK").

Events are checked in `track()`, buffered, and published when the buffer is
full, old, flushed or closed: as JSONL landing files (DESIGN §2, `landing=`
mode) or to the HTTP API (`api_url=` mode, `sdk/http.py`). Every event gets
its idempotency key in `track()`, so re-sending a buffer after a failed or
doubtful write never double-counts: the ledger keeps one event per key.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import duckdb

from stripemeter_assets import settings
from stripemeter_assets.sdk.events import (
    DEFAULT_MAX_CLOCK_SKEW,
    InvalidEvent,
    check_meta,
    check_sign,
    check_text,
    json_line,
    new_key,
    parse_quantity,
    parse_ts,
)
from stripemeter_assets.sdk.http import HttpApi, new_batch_key
from stripemeter_assets.sdk.writer import LandingWriter

log = logging.getLogger("stripemeter.sdk")

# track_batch() accepts track()'s argument names and the contract's camelCase.
_BATCH_FIELDS = {
    "metric": "metric",
    "customer_ref": "customer_ref", "customerRef": "customer_ref",
    "quantity": "quantity",
    "ts": "ts",
    "meta": "meta",
    "idempotency_key": "idempotency_key", "idempotencyKey": "idempotency_key",
    "resource_id": "resource_id", "resourceId": "resource_id",
}
# Buffered events beyond which a failing landing makes track() refuse new
# events (raising, so the caller knows they were not taken) instead of
# holding an ever-growing buffer in memory.
MAX_BUFFER_BATCHES = 100


class StripeMeterClient:
    """Tracks usage events for one tenant into the landing area, or to the
    HTTP API when `api_url` is given (`api_key`: its bearer key).

    Thread-safe: one lock guards the buffer and the file writes. Not a
    background service: the age limit is checked on each `track()` and by
    `flush_if_due()`; call `flush()`/`close()` (or use `with`) before exit.
    """

    def __init__(self, landing: str | None = None, tenant_id: str | None = None,
                 customer_id: str | None = None, max_batch: int = 1000, max_age_seconds: float = 5.0,
                 analytics: str | None = None, *, negative_metrics: Iterable[str] = (),
                 max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
                 storage_options: dict[str, Any] | None = None, api_url: str | None = None,
                 api_key: str | None = None, http_options: dict[str, Any] | None = None):
        self.tenant_id = check_text("tenantId", tenant_id, required=True)
        self.customer_id = check_text("customerRef", customer_id, required=False)
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if api_url and landing:
            raise ValueError("give landing= or api_url=, not both")
        self.api_url = api_url
        self.landing = None if api_url else landing or settings.landing_url()
        self.analytics = analytics
        self.max_batch = max_batch
        self.max_age_seconds = max_age_seconds
        self.negative_metrics = frozenset(negative_metrics)
        self.max_clock_skew = max_clock_skew
        self.last_error: BaseException | None = None
        # Events the API refused ([{index, reason, ...}] of the last flush):
        # only where the server's config differs from this client's checks.
        self.last_rejected: list[dict[str, Any]] = []
        self._http = HttpApi(api_url, api_key, **(http_options or {})) if api_url else None
        self._writer = None if api_url else LandingWriter(self.landing, storage_options)
        # The Idempotency-Key of the buffer as last sent, reused while the
        # buffer is unchanged, so a retried flush replays the first answer.
        self._batch: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._buffer: list[str] = []
        self._oldest: float | None = None  # monotonic time the oldest buffered event was taken

    # -- tracking -------------------------------------------------------------

    def track(self, metric: str, customer_ref: str | None = None, quantity: Any = 1, ts: Any = None,
              meta: dict | None = None, idempotency_key: str | None = None,
              resource_id: str | None = None) -> str:
        """Buffers one event; returns its idempotency key (generated when not given).
        Raises `InvalidEvent` (nothing buffered) when the ingest would refuse it."""
        line, key = self._event(metric, customer_ref, quantity, ts, meta, idempotency_key, resource_id)
        self._add([line])
        return key

    def track_batch(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Buffers all events or none: one invalid event raises `InvalidEvent`
        (with its index) before any is buffered. Returns their keys."""
        lines, keys = [], []
        for index, event in enumerate(events):
            try:
                kwargs = self._batch_kwargs(event)
                line, key = self._event(**kwargs)
            except InvalidEvent as exc:
                raise InvalidEvent(exc.field, exc.reason, index, exc.code) from None
            lines.append(line)
            keys.append(key)
        if lines:
            self._add(lines)
        return keys

    def _batch_kwargs(self, event: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(event, Mapping):
            raise InvalidEvent("event", f"must be a mapping, not {type(event).__name__}")
        kwargs: dict[str, Any] = {}
        for name, value in event.items():
            if name not in _BATCH_FIELDS:
                raise InvalidEvent(str(name), "unknown field")
            kwargs[_BATCH_FIELDS[name]] = value
        if "metric" not in kwargs:
            raise InvalidEvent("metric", "required")
        return {"customer_ref": None, "quantity": 1, "ts": None, "meta": None,
                "idempotency_key": None, "resource_id": None, **kwargs}

    def _event(self, metric, customer_ref, quantity, ts, meta, idempotency_key, resource_id) -> tuple[str, str]:
        metric = check_text("metric", metric, required=True)
        customer_ref = check_text("customerRef", customer_ref if customer_ref is not None else self.customer_id,
                                  required=True)
        q = parse_quantity(quantity)
        check_sign(metric, q, metric in self.negative_metrics)
        when = parse_ts(ts, settings.now(), self.max_clock_skew)
        key = check_text("idempotencyKey", idempotency_key, required=False) or new_key()
        resource_id = check_text("resourceId", resource_id, required=False)
        meta = check_meta(meta)
        line = json_line(tenant_id=self.tenant_id, metric=metric, customer_ref=customer_ref, quantity=q,
                         ts=when, idempotency_key=key, resource_id=resource_id, meta=meta)
        return line, key

    def _add(self, lines: list[str]) -> None:
        with self._lock:
            if self._buffer and len(self._buffer) + len(lines) > self.max_batch * MAX_BUFFER_BATCHES:
                # Raises if the landing is still failing: these events were not taken.
                self._flush_locked()
            self._buffer.extend(lines)
            if self._oldest is None:
                self._oldest = time.monotonic()
            if self._due_locked():
                try:
                    self._flush_locked()
                except Exception as exc:
                    # The events are buffered and will be re-sent with the same keys;
                    # raising here would tell the caller to track them again.
                    self.last_error = exc
                    log.warning("stripemeter: landing write failed, %d events kept for retry: %s",
                                len(self._buffer), exc)

    # -- flushing -------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Events buffered, not yet published."""
        with self._lock:
            return len(self._buffer)

    def _due_locked(self) -> bool:
        if not self._buffer:
            return False
        if len(self._buffer) >= self.max_batch:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.max_age_seconds

    def _flush_locked(self) -> str | None:
        if not self._buffer:
            return None
        # On failure the buffer stays as it is: a later flush re-sends the same
        # events with the same keys (and the ledger drops any that did land).
        if self._http is not None:
            if self._batch is None or self._batch[0] != len(self._buffer):
                self._batch = (len(self._buffer), new_batch_key())
            answer = self._http.ingest(self._buffer, self._batch[1])
            self.last_rejected = answer.get("rejected", [])
            if self.last_rejected:
                log.warning("stripemeter: the API refused %d of %d events: %s", len(self.last_rejected),
                            len(self._buffer), self.last_rejected[:5])
            where = f"{self.api_url} ({answer.get('accepted', 0)} accepted)"
        else:
            where = self._writer.write("".join(self._buffer).encode("utf-8"), self.tenant_id)
        self._buffer.clear()
        self._batch = None
        self._oldest = None
        self.last_error = None
        return where

    def flush(self) -> str | None:
        """Publishes every buffered event as one landing file (returns its path)
        or one API request (returns the URL and count); None when nothing was
        buffered. Raises if the write fails after its retries (the events stay
        buffered; call again to retry)."""
        with self._lock:
            return self._flush_locked()

    def flush_if_due(self) -> str | None:
        """Flushes only when the size or age limit is reached (for a caller's timer)."""
        with self._lock:
            return self._flush_locked() if self._due_locked() else None

    def close(self) -> str | None:
        try:
            return self.flush()
        finally:
            if self._http is not None and not self._buffer:
                self._http.close()

    def __enter__(self) -> StripeMeterClient:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.flush()
        except Exception:
            if exc_type is None:
                raise
            log.exception("stripemeter: flush on exit failed; %d events not published", self.pending)

    # -- reading the analyst snapshot ------------------------------------------

    def get_usage(self, customer_ref: str | None = None) -> Any:
        """This tenant's and customer's rows of `v_current_period_usage` in the
        published analyst snapshot (timestamps timezone-aware UTC). Over HTTP:
        the API's answer, `{tenantId, customerRef, asOf, usage: [...]}`."""
        customer_ref = check_text("customerRef", customer_ref or self.customer_id, required=True)
        if self._http is not None:
            return self._http.request("GET", f"/v1/usage/{quote(customer_ref, safe='')}",
                                      params={"tenantId": self.tenant_id})
        return self._read("SELECT * FROM v_current_period_usage WHERE tenant_id = ? AND customer_ref = ? "
                          "ORDER BY metric, period_start", [self.tenant_id, customer_ref])

    def get_projection(self, customer_ref: str | None = None) -> Any:
        """Rows of the snapshot's `cost_projection` table for this tenant and
        customer; an empty list while that table does not exist. Over HTTP:
        the API's answer, `{tenantId, customerRef, asOf, projection: [...]}`."""
        customer_ref = check_text("customerRef", customer_ref or self.customer_id, required=True)
        if self._http is not None:
            return self._http.request("POST", "/v1/usage/projection",
                                      json={"tenantId": self.tenant_id, "customerRef": customer_ref})
        with self._snapshot() as conn:
            columns = {row[0] for row in conn.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
                "AND schema_name = 'main' AND table_name = 'cost_projection'").fetchall()}
            if not columns:
                return []
            where, params = [], []
            for column, value in (("tenant_id", self.tenant_id), ("customer_ref", customer_ref)):
                if column in columns:
                    where.append(f"{column} = ?")
                    params.append(value)
            sql = "SELECT * FROM cost_projection" + (" WHERE " + " AND ".join(where) if where else "")
            if "metric" in columns:
                sql += " ORDER BY metric"
            return _rows(conn.execute(sql, params))

    def _read(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        with self._snapshot() as conn:
            return _rows(conn.execute(sql, params))

    def _snapshot(self) -> _ReadOnly:
        path = self.analytics or settings.analytics_path()
        if not os.path.exists(path):
            raise FileNotFoundError(f"no analyst snapshot at {path}: publish one first "
                                    "(stripemeter_assets.analytics.snapshot.publish_snapshot)")
        return _ReadOnly(path)


class _ReadOnly:
    """A read-only DuckDB connection to the snapshot, closed on exit."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        self.conn = duckdb.connect(self.path, read_only=True)
        self.conn.execute("SET TimeZone = 'UTC'")
        return self.conn

    def __exit__(self, *exc: Any) -> None:
        self.conn.close()


def _rows(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [{c: _aware(v) for c, v in zip(cols, row)} for row in cur.fetchall()]


def _aware(value: Any) -> Any:
    # Ledger timestamps are naive UTC.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
