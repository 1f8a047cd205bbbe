"""Reading fields out of parsed JSON, with errors that name the field's path."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from .errors import ScenarioError
from .money import MINOR_UNITS

# Bounds that keep exact arithmetic finite (see money.EXACT): 38 integer digits is DECIMAL(38)'s
# limit; 24 fractional digits leaves room for Stripe's 12-place minor-unit decimals in KWD-style
# currencies.
MAX_INTEGER_DIGITS = 38
MAX_FRACTION_DIGITS = 24

# A JSON number written as a string; Decimal() alone would also take "NaN", "Infinity" and "1_0".
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def child(path: str, key: str) -> str:
    """Path of field `key` inside the object at `path` (the root path is "")."""
    return f"{path}.{key}" if path else key


def item(path: str, index: int) -> str:
    """Path of element `index` of the list at `path`."""
    return f"{path}[{index}]"


def as_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an error."""
    if not isinstance(value, Mapping):
        raise ScenarioError(path, f"must be an object, got {_kind(value)}")
    return value


def reject_unknown(obj: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    """Fail on a key outside `allowed`: a misspelt `minimumcharge` would otherwise bill wrongly."""
    allowed = tuple(allowed)
    for key in obj:
        if key not in allowed:
            raise ScenarioError(
                child(path, str(key)), f"unknown field (expected one of {', '.join(allowed)})"
            )


def to_decimal(value: Any, path: str) -> Decimal:
    """`value` (JSON number, numeric string, int or Decimal) as a finite, bounded Decimal.

    A Python float is taken by its shortest repr, i.e. the literal that was typed (0.1 -> 0.1),
    never by its binary value; YAML and hand-written Python configs produce floats.
    """
    if isinstance(value, bool):
        raise ScenarioError(path, f"not a number, got {_kind(value)}")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = Decimal(value.strip())
    else:
        raise ScenarioError(path, f"not a number, got {_kind(value)}")
    if not number.is_finite():
        raise ScenarioError(path, "not a finite number")
    if number.is_zero():
        return number
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        raise ScenarioError(path, f"too large (at most {MAX_INTEGER_DIGITS} digits before the point)")
    _, digits, exponent = number.as_tuple()
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if -(exponent + trailing_zeros) > MAX_FRACTION_DIGITS:
        raise ScenarioError(path, f"too many decimal places (at most {MAX_FRACTION_DIGITS})")
    return number


def read_decimal(
    obj: Mapping[str, Any], key: str, path: str, *, required: bool, positive: bool = False
) -> Decimal | None:
    """Field `key` as a non-negative Decimal (strictly positive if `positive`); None if absent.

    Every number in a price, a usage item or a credit is non-negative, so the check lives here.
    """
    field = child(path, key)
    value = obj.get(key)
    if value is None:
        if required:
            raise ScenarioError(field, "missing")
        return None
    number = to_decimal(value, field)
    if positive and number <= 0:
        raise ScenarioError(field, f"must be greater than 0, got {number}")
    if number < 0:
        raise ScenarioError(field, f"negative ({number})")
    return number


def read_str(obj: Mapping[str, Any], key: str, path: str, *, required: bool) -> str | None:
    """Field `key` as a non-empty string; None if absent and not required."""
    field = child(path, key)
    value = obj.get(key)
    if value is None:
        if required:
            raise ScenarioError(field, "missing")
        return None
    if not isinstance(value, str):
        raise ScenarioError(field, f"must be a string, got {_kind(value)}")
    if not value.strip():
        raise ScenarioError(field, "must not be empty")
    return value


def read_currency(obj: Mapping[str, Any], key: str, path: str, *, required: bool) -> str | None:
    """Field `key` as an upper-case ISO 4217 code (Stripe writes them lower-case)."""
    code = read_str(obj, key, path, required=required)
    if code is None:
        return None
    if code.strip().upper() not in MINOR_UNITS:
        raise ScenarioError(
            child(path, key), f"unknown currency {code!r} (expected an ISO 4217 code such as USD)"
        )
    return code.strip().upper()


def read_list(obj: Mapping[str, Any], key: str, path: str, *, required: bool) -> list[Any]:
    """Field `key` as a list; an absent optional list is empty."""
    field = child(path, key)
    value = obj.get(key)
    if value is None:
        if required:
            raise ScenarioError(field, "missing")
        return []
    if not isinstance(value, list | tuple):
        raise ScenarioError(field, f"must be a list, got {_kind(value)}")
    return list(value)


def read_instant(obj: Mapping[str, Any], key: str, path: str, *, required: bool) -> datetime | None:
    """Field `key` (ISO 8601 date or date-time) as an aware UTC datetime; a date is its midnight UTC.

    A date-time without an offset is UTC, as everywhere else in stripemeter.
    """
    field = child(path, key)
    value = obj.get(key)
    if value is None:
        if required:
            raise ScenarioError(field, "missing")
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ScenarioError(field, f"not an ISO 8601 date or date-time: {value!r}") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    elif not isinstance(value, datetime):
        raise ScenarioError(field, f"must be an ISO 8601 date or date-time, got {_kind(value)}")
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _kind(value: Any) -> str:
    """How to name a wrong value in a message: short, and JSON's vocabulary."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__
