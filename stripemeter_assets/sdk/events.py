"""One usage event as the SDK checks and writes it (DESIGN §2).

The checks mirror `sql/ingest/validate.sql`, so an event the SDK accepts is
never quarantined by the ingest for its shape; they run in `track()`, before
anything is buffered, and raise `InvalidEvent` naming the field.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from stripemeter_assets.ledger.keys import canonical_quantity

# Field -> max length in characters (DuckDB `length` counts code points, as `len` does).
MAX_CHARS = {"tenantId": 128, "metric": 128, "customerRef": 255, "idempotencyKey": 255, "resourceId": 255}
# DECIMAL(38, 9) in the ledger: 29 integer and 9 fractional significant digits.
MAX_INT_DIGITS = 29
MAX_FRAC_DIGITS = 9
DEFAULT_MAX_CLOCK_SKEW = timedelta(hours=1)
# The decimal texts `sm_decimal` (sql/ingest/macros.sql) accepts.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
KEY_PREFIX = "sdk_"


class InvalidEvent(ValueError):
    """An event the ingest would not accept; nothing was buffered or written."""

    def __init__(self, field: str, reason: str, index: int | None = None):
        self.field = field
        self.reason = reason
        self.index = index
        where = field if index is None else f"events[{index}].{field}"
        super().__init__(f"{where}: {reason}")


def check_text(field: str, value: Any, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidEvent(field, "required")
        return None
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a string, not {type(value).__name__}")
    if value == "":
        raise InvalidEvent(field, "must not be empty" if not required else "required (empty string)")
    if len(value) > MAX_CHARS[field]:
        raise InvalidEvent(field, f"{len(value)} characters, at most {MAX_CHARS[field]} allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidEvent(field, "not encodable as UTF-8 (lone surrogate)") from exc
    return value


def parse_quantity(value: Any) -> Decimal:
    """A finite decimal that fits DECIMAL(38, 9) exactly.

    A float is converted through `repr`, its shortest round-trip text, so
    `0.1` is the decimal 0.1 (what the caller wrote), never
    0.1000000000000000055511151231257827.
    """
    if isinstance(value, bool):
        raise InvalidEvent("quantity", "a bool is not a quantity")
    if isinstance(value, Decimal):
        q = value
    elif isinstance(value, numbers.Integral):
        q = Decimal(int(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent("quantity", f"{value!r} is not finite")
        q = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidEvent("quantity", f"{value[:64]!r} is not a decimal number")
        try:
            q = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid text
            raise InvalidEvent("quantity", f"{value[:64]!r} is not a decimal number") from exc
    else:
        raise InvalidEvent("quantity", f"must be a Decimal, int, str or float, not {type(value).__name__}")
    if not q.is_finite():
        raise InvalidEvent("quantity", f"{value!r} is not finite")
    # Count significant digits from the tuple, never by formatting: "1e999999999"
    # must not build a billion-character string.
    _, digits, exponent = q.as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    if digits == [0]:
        return Decimal(0)
    if len(digits) + exponent > MAX_INT_DIGITS:
        raise InvalidEvent("quantity", f"more than {MAX_INT_DIGITS} integer digits")
    if -exponent > MAX_FRAC_DIGITS:
        raise InvalidEvent("quantity", f"more than {MAX_FRAC_DIGITS} fractional digits")
    return q


def parse_ts(value: Any, now: datetime, max_skew: timedelta) -> datetime:
    """Aware UTC datetime; naive input is UTC."""
    if value is None:
        ts = now
    elif isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidEvent("ts", f"{value[:64]!r} is not an RFC 3339 timestamp") from exc
    else:
        raise InvalidEvent("ts", f"must be a datetime or RFC 3339 string, not {type(value).__name__}")
    try:
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidEvent("ts", "out of range in UTC") from exc
    if ts > now + max_skew:
        raise InvalidEvent("ts", f"{format_ts(ts)} is more than {max_skew} ahead of now ({format_ts(now)})")
    return ts


def check_meta(meta: Any) -> dict | None:
    """A private copy (later changes by the caller do not alter the event)."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidEvent("meta", f"must be a dict, not {type(meta).__name__}")
    try:
        # allow_nan=False: NaN/Infinity are not JSON and would make the line unparseable.
        return json.loads(json.dumps(meta, allow_nan=False, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent("meta", f"not JSON-serialisable: {exc}") from exc


def format_ts(ts: datetime) -> str:
    """RFC 3339 UTC with microseconds and `Z` (four-digit year even before 1000)."""
    ts = ts.astimezone(UTC)
    return (f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:"
            f"{ts.second:02d}.{ts.microsecond:06d}Z")


def new_key() -> str:
    """A fresh idempotency key: 122 random bits, so two identical track() calls
    are two events, and a re-sent buffer carries the same keys."""
    return KEY_PREFIX + uuid.uuid4().hex


def json_line(*, tenant_id: str, metric: str, customer_ref: str, quantity: Decimal, ts: datetime,
              idempotency_key: str, resource_id: str | None, meta: dict | None) -> str:
    """One JSONL line in the contract's camelCase; quantity as an exact decimal string."""
    record: dict[str, Any] = {
        "tenantId": tenant_id,
        "metric": metric,
        "customerRef": customer_ref,
        "quantity": canonical_quantity(quantity),
        "ts": format_ts(ts),
        "idempotencyKey": idempotency_key,
    }
    if resource_id is not None:
        record["resourceId"] = resource_id
    if meta is not None:
        record["meta"] = meta
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
