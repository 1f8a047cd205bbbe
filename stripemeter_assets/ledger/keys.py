"""The derived idempotency key (DESIGN §2), in Python.

`sql/ledger/validate.sql` computes the same key in DuckDB; a test holds the
two equal. Changing either is a breaking change: stored keys would no longer
match re-sent events.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from decimal import Decimal

SEP = "\x1f"
# 128 bits of SHA-256: the shortest truncation DESIGN §2 allows.
KEY_HEX_CHARS = 32


def canonical_quantity(quantity: Decimal | int | str) -> str:
    """Plain decimal, no exponent, no trailing fractional zeros or point."""
    text = format(Decimal(quantity), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    return text


def epoch_micros(ts: datetime) -> int:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def derive_key(
    tenant_id: str,
    metric: str,
    customer_ref: str,
    resource_id: str | None,
    ts: datetime,
    quantity: Decimal | int | str,
) -> str:
    material = SEP.join(
        [
            tenant_id,
            metric,
            customer_ref,
            resource_id or "",
            str(epoch_micros(ts)),
            canonical_quantity(quantity),
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:KEY_HEX_CHARS]
