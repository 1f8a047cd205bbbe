"""One usage event as the SDK checks and writes it (DESIGN §2).

The checks mirror `sql/ledger/validate.sql`, so an event the SDK accepts is
never quarantined by the ingest for its shape; they run in `track()`, before
anything is buffered, and in the HTTP API's ingest route (`check_record`),
and raise `InvalidEvent` naming the field and the ingest's quarantine reason.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from collections.abc import Callable
from typing import Any

import orjson

from stripemeter_assets import settings
from stripemeter_assets.ledger.keys import canonical_quantity
from stripemeter_assets.settings import utc

# Field -> max length in characters (DuckDB `length` counts code points, as `len` does).
MAX_CHARS = {"tenantId": 128, "metric": 128, "customerRef": 255, "idempotencyKey": 255, "resourceId": 255}
# DECIMAL(38, 9) in the ledger: 29 integer and 9 fractional significant digits.
MAX_INT_DIGITS = 29
MAX_FRAC_DIGITS = 9
DEFAULT_MAX_CLOCK_SKEW = timedelta(hours=1)
# The decimal texts `sm_decimal` (sql/ledger/macros.sql) accepts.
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
KEY_PREFIX = "sdk_"
# The shape `sm_timestamp` (sql/ledger/macros.sql) requires before parsing:
# a date, T or space, a time to the second; a bare date is refused.
_TS_SHAPE = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d")


class InvalidEvent(ValueError):
    """An event the ingest would not accept; nothing was buffered or written.
    `code` is the reason the ingest would quarantine it with (DESIGN §2)."""

    def __init__(self, field: str, reason: str, index: int | None = None, code: str = "invalid_type"):
        self.field = field
        self.reason = reason
        self.index = index
        self.code = code
        where = field if index is None else f"events[{index}].{field}"
        super().__init__(f"{where}: {reason}")


def check_text(field: str, value: Any, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise InvalidEvent(field, "required", code="missing_field")
        return None
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a string, not {type(value).__name__}")
    if value == "":
        if required:
            raise InvalidEvent(field, "required (empty string)", code="missing_field")
        raise InvalidEvent(field, "must not be empty")
    if len(value) > MAX_CHARS[field]:
        raise InvalidEvent(field, f"{len(value)} characters, at most {MAX_CHARS[field]} allowed",
                           code="field_too_long")
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
            raise InvalidEvent("quantity", f"{value!r} is not finite", code="invalid_quantity")
        q = Decimal(repr(value))
    elif isinstance(value, str):
        text = value.strip()
        if not _DECIMAL_TEXT.fullmatch(text):
            raise InvalidEvent("quantity", f"{value[:64]!r} is not a decimal number", code="invalid_quantity")
        try:
            q = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the regex admits only valid text
            raise InvalidEvent("quantity", f"{value[:64]!r} is not a decimal number",
                               code="invalid_quantity") from exc
    else:
        raise InvalidEvent("quantity", f"must be a Decimal, int, str or float, not {type(value).__name__}")
    if not q.is_finite():
        raise InvalidEvent("quantity", f"{value!r} is not finite", code="invalid_quantity")
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
        raise InvalidEvent("quantity", f"more than {MAX_INT_DIGITS} integer digits", code="invalid_quantity")
    if -exponent > MAX_FRAC_DIGITS:
        raise InvalidEvent("quantity", f"more than {MAX_FRAC_DIGITS} fractional digits", code="invalid_quantity")
    return q


def parse_ts(value: Any, now: datetime, max_skew: timedelta) -> datetime:
    """Aware UTC datetime; naive input is UTC."""
    if value is None:
        ts = now
    elif isinstance(value, datetime):
        ts = value
    elif isinstance(value, str):
        if not _TS_SHAPE.match(value):
            raise InvalidEvent("ts", f"{value[:64]!r} is not an RFC 3339 timestamp (date, T, time)",
                               code="invalid_timestamp")
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as exc:
            raise InvalidEvent("ts", f"{value[:64]!r} is not an RFC 3339 timestamp",
                               code="invalid_timestamp") from exc
    else:
        raise InvalidEvent("ts", f"must be a datetime or RFC 3339 string, not {type(value).__name__}")
    try:
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidEvent("ts", "out of range in UTC", code="invalid_timestamp") from exc
    if ts > now + max_skew:
        raise InvalidEvent("ts", f"{format_ts(ts)} is more than {max_skew} ahead of now ({format_ts(now)})",
                           code="future_timestamp")
    first = utc(settings.partitions_start())
    if ts < first:
        raise InvalidEvent("ts", f"{format_ts(ts)} is before the first counted day, {first:%Y-%m-%d}",
                           code="timestamp_out_of_range")
    return ts


def check_sign(metric: str, quantity: Decimal, allows_negative: bool) -> None:
    if quantity < 0 and not allows_negative:
        raise InvalidEvent("quantity", f"negative quantity {quantity} not allowed for metric {metric!r}",
                           code="negative_quantity")


_REQUIRED = ("tenantId", "metric", "customerRef", "quantity", "ts")
_TEXT_FIELDS = ("tenantId", "metric", "customerRef", "idempotencyKey", "resourceId")


def check_record(record: Any, *, now: datetime, max_skew: timedelta,
                 allows_negative: Callable[[str], bool]) -> tuple[str, str]:
    """One event in the contract's camelCase (a landing line, an API body item),
    checked in the order `sql/ledger/validate.sql` checks it, so the first
    failing reason is the one the ingest would quarantine it with. Returns
    (tenant, JSONL line). An event without `idempotencyKey` stays without one:
    the ingest gives it the derived key (DESIGN §2), so a re-sent copy dedupes."""
    if not isinstance(record, dict):
        raise InvalidEvent("event", "not a JSON object", code="invalid_json")
    # Empty strings are absent fields, as in the ingest.
    get = {name: (None if record.get(name) == "" else record.get(name))
           for name in (*_REQUIRED, "idempotencyKey", "resourceId", "meta")}
    missing = [name for name in _REQUIRED if get[name] is None]
    if missing:
        raise InvalidEvent(missing[0], "required field empty or absent: " + ", ".join(missing), code="missing_field")
    for name in _TEXT_FIELDS + ("ts",):
        if get[name] is not None and not isinstance(get[name], str):
            raise InvalidEvent(name, f"must be a string, not {type(get[name]).__name__}")
    quantity = get["quantity"]
    if isinstance(quantity, bool) or not isinstance(quantity, (str, int, float, Decimal)):
        raise InvalidEvent("quantity", f"must be a number or a decimal string, not {type(quantity).__name__}")
    if get["meta"] is not None and not isinstance(get["meta"], dict):
        raise InvalidEvent("meta", f"must be an object, not {type(get['meta']).__name__}")
    text = {name: check_text(name, get[name], required=name in _REQUIRED) for name in _TEXT_FIELDS}
    q = parse_quantity(quantity)
    check_sign(text["metric"], q, allows_negative(text["metric"]))
    when = parse_ts(get["ts"], now, max_skew)
    # `meta` came out of a JSON parser: it is JSON already, and the line is a new text, so no copy.
    try:
        line = json_line(tenant_id=text["tenantId"], metric=text["metric"], customer_ref=text["customerRef"],
                         quantity=q, ts=when, idempotency_key=text["idempotencyKey"],
                         resource_id=text["resourceId"], meta=get["meta"])
    except (TypeError, ValueError) as exc:
        raise InvalidEvent("meta", f"not JSON-serialisable: {exc}") from exc
    return text["tenantId"], line


def check_meta(meta: Any) -> dict | None:
    """A private copy (later changes by the caller do not alter the event)."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise InvalidEvent("meta", f"must be a dict, not {type(meta).__name__}")
    try:
        # allow_nan=False: NaN/Infinity are not JSON and would make the line unparseable.
        return json.loads(json.dumps(meta, allow_nan=False, ensure_ascii=False, default=_json_number))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent("meta", f"not JSON-serialisable: {exc}") from exc


def _json_number(value: Any) -> Any:
    # The API parses bodies exactly (parse_float=Decimal), so meta may carry
    # Decimals; meta is descriptive only (never in a key), a float is enough.
    if isinstance(value, Decimal) and value.is_finite():
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


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
              idempotency_key: str | None, resource_id: str | None, meta: dict | None) -> str:
    """One JSONL line in the contract's camelCase; quantity as an exact decimal string."""
    record: dict[str, Any] = {
        "tenantId": tenant_id,
        "metric": metric,
        "customerRef": customer_ref,
        "quantity": canonical_quantity(quantity),
        "ts": format_ts(ts),
    }
    if idempotency_key is not None:
        record["idempotencyKey"] = idempotency_key
    if resource_id is not None:
        record["resourceId"] = resource_id
    if meta is not None:
        record["meta"] = meta
    try:
        # orjson: the API's hot path (a third of the cost of the stdlib encoder).
        return orjson.dumps(record, default=_json_number, option=orjson.OPT_APPEND_NEWLINE).decode("utf-8")
    except orjson.JSONEncodeError:
        # What orjson refuses but JSON allows: integers beyond 64 bits in meta.
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                          default=_json_number) + "\n"
