"""Stripe's meter error reports as v2 thin events, and ``/v2/core/events``.

Errors found by the asynchronous validation (``validation``) are gathered per scope, meter
and validation window of ``window_seconds``; a window is published as one event
``v1.billing.meter.error_report_triggered`` (with the meter as related object) — or
``v1.billing.meter.no_meter_found`` (no meter) — ``delay_seconds`` after it ends. Shapes
follow https://docs.stripe.com/api/v2/core/events/object:
``data.validation_start/validation_end`` (ISO), ``data.reason.error_count``,
``data.reason.error_types[].{code, error_count, sample_errors[].{error_message,
request.identifier}}``. ``sample_errors`` are samples: Stripe does not promise to name
every failed identifier, and the emulator names at most ``sample_limit`` per error type
(Stripe does not document its number).

Listing (``GET /v2/core/events``: ``object_id``, ``types[]``, ``created[gt|gte|lt|lte]``,
``limit``, ``page``; newest first; ``{data, next_page_url, previous_page_url}``) returns thin
events without ``data``: "During processing, you must fetch the versioned event from the
API" (https://docs.stripe.com/api/v2/events/event-types); ``GET /v2/core/events/{id}``
returns the event with its ``data``.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from . import errors

ERROR_REPORT = "v1.billing.meter.error_report_triggered"
NO_METER_FOUND = "v1.billing.meter.no_meter_found"
_ALPHABET = string.ascii_letters + string.digits


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def parse_iso(text: str, param: str) -> int:
    try:
        return int(datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp())
    except ValueError:
        raise errors.invalid(f"Invalid timestamp for {param}: {text!r}", param=param) from None


@dataclass
class ErrorEntry:
    meter_id: str | None
    code: str
    message: str
    identifier: str
    received: int


@dataclass
class _Window:
    entries: list[ErrorEntry] = field(default_factory=list)
    published: bool = False


class MeterErrorLog:
    def __init__(self, window_seconds: int = 60, delay_seconds: int = 60, sample_limit: int = 3) -> None:
        self.window_seconds = window_seconds
        self.delay_seconds = delay_seconds
        self.sample_limit = sample_limit
        self._lock = threading.Lock()
        # (livemode, account, meter_id) -> window start -> entries
        self._windows: dict[tuple[Any, ...], dict[int, _Window]] = defaultdict(dict)
        self._events: dict[tuple[bool, str | None], list[dict[str, Any]]] = defaultdict(list)

    def configure(self, *, window_seconds: int | None = None, delay_seconds: int | None = None,
                  sample_limit: int | None = None) -> dict[str, int]:
        with self._lock:
            if window_seconds is not None:
                self.window_seconds = max(1, int(window_seconds))
            if delay_seconds is not None:
                self.delay_seconds = max(0, int(delay_seconds))
            if sample_limit is not None:
                self.sample_limit = max(0, int(sample_limit))
            return {"window_seconds": self.window_seconds, "delay_seconds": self.delay_seconds,
                    "sample_limit": self.sample_limit}

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()
            self._events.clear()

    def record(self, livemode: bool, account: str | None, entry: ErrorEntry) -> None:
        with self._lock:
            start = entry.received - entry.received % self.window_seconds
            self._windows[(livemode, account, entry.meter_id)].setdefault(start, _Window()).entries.append(entry)

    # -- publication -----------------------------------------------------------
    def _publish_due(self, now: int) -> None:
        for (livemode, account, meter_id), windows in self._windows.items():
            for start in sorted(windows):
                window = windows[start]
                end = start + self.window_seconds
                if window.published or end + self.delay_seconds > now:
                    continue
                window.published = True
                self._events[(livemode, account)].append(
                    self._event(livemode, meter_id, start, end, end + self.delay_seconds, window.entries))

    def _event(self, livemode: bool, meter_id: str | None, start: int, end: int, created: int,
               entries: list[ErrorEntry]) -> dict[str, Any]:
        by_code: dict[str, list[ErrorEntry]] = defaultdict(list)
        for e in entries:
            by_code[e.code].append(e)
        n = len(entries)
        prefix = "evt_" if livemode else "evt_test_"
        return {
            "id": prefix + "".join(secrets.choice(_ALPHABET) for _ in range(40)),
            "object": "v2.core.event",
            "context": None,
            "created": iso(created),
            "livemode": livemode,
            "reason": None,
            "related_object": None if meter_id is None else {
                "id": meter_id, "type": "billing.meter", "url": f"/v1/billing/meters/{meter_id}"},
            "type": ERROR_REPORT if meter_id is not None else NO_METER_FOUND,
            "_created_s": created,
            "data": {
                "developer_message_summary": f"There {'is' if n == 1 else 'are'} {n} invalid event{'s' * (n != 1)}",
                "reason": {
                    "error_count": n,
                    "error_types": [{
                        "code": code,
                        "error_count": len(group),
                        "sample_errors": [{"error_message": e.message, "request": {"identifier": e.identifier}}
                                          for e in group[: self.sample_limit]],
                    } for code, group in by_code.items()],
                },
                "validation_end": iso(end),
                "validation_start": iso(start),
            },
        }

    # -- API ---------------------------------------------------------------------
    @staticmethod
    def _public(event: dict[str, Any], *, with_data: bool) -> dict[str, Any]:
        out = {k: v for k, v in event.items() if not k.startswith("_")}
        if not with_data:
            out.pop("data", None)
        return out

    def list(self, livemode: bool, account: str | None, params: dict[str, Any], now: int) -> dict[str, Any]:
        limit = int(params.get("limit") or 20)
        if not 1 <= limit <= 100:
            raise errors.invalid("Invalid limit: must be between 1 and 100.", param="limit")
        object_id = params.get("object_id") or None
        types = params.get("types")
        if isinstance(types, dict):  # types[0]=…&types[1]=…
            types = list(types.values())
        elif isinstance(types, str):
            types = [types]
        created = params.get("created") if isinstance(params.get("created"), dict) else {}
        bounds = {op: parse_iso(created[op], f"created[{op}]") for op in ("gt", "gte", "lt", "lte") if created.get(op)}
        offset = int(str(params.get("page") or "0") or 0)
        with self._lock:
            self._publish_due(now)
            items = [e for e in reversed(self._events[(livemode, account)])
                     if (object_id is None or (e["related_object"] or {}).get("id") == object_id)
                     and (not types or e["type"] in types)
                     and ("gt" not in bounds or e["_created_s"] > bounds["gt"])
                     and ("gte" not in bounds or e["_created_s"] >= bounds["gte"])
                     and ("lt" not in bounds or e["_created_s"] < bounds["lt"])
                     and ("lte" not in bounds or e["_created_s"] <= bounds["lte"])]
        page = items[offset: offset + limit]
        next_url = None
        if offset + limit < len(items):
            query = {"limit": limit, "page": offset + limit}
            if object_id:
                query["object_id"] = object_id
            query.update({f"created[{op}]": created[op] for op in bounds})
            next_url = "/v2/core/events?" + urlencode(query)
        return {"data": [self._public(e, with_data=False) for e in page], "next_page_url": next_url,
                "previous_page_url": None}

    def retrieve(self, livemode: bool, account: str | None, event_id: str, now: int) -> dict[str, Any]:
        with self._lock:
            self._publish_due(now)
            for e in self._events[(livemode, account)]:
                if e["id"] == event_id:
                    return self._public(e, with_data=True)
        raise errors.no_such("event", event_id)
