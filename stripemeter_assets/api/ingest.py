"""`POST /v1/events/ingest`: check each event like the ingest does, publish the
accepted ones as one landing file (fsync, atomic rename) before answering.

The answer is sent only once the file is durable, so an event the API
accepted survives a crash of the server at any later point. An event's
idempotency key (or the derived key the ingest gives a keyless event) makes a
re-sent request count once however often it is retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from stripemeter_assets import settings
from stripemeter_assets.sdk.events import InvalidEvent, check_record
from stripemeter_assets.sdk.writer import LandingWriter

MAX_BODY_BYTES = 10 * 1024 * 1024


class BadRequest(Exception):
    """400: the body is not JSON or not `{events: [...]}`."""


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(body: bytes) -> list[Any]:
    """The body's `events`; numbers as exact Decimals, as the ingest reads
    JSON numbers from their text."""
    try:
        doc = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise BadRequest('body must be a JSON object {"events": [...]}')
    return doc["events"]


def claimed_tenants(events: list[Any]) -> set[str]:
    """The tenants a request writes for, checked against the key before
    anything is validated or written."""
    return {e["tenantId"] for e in events
            if isinstance(e, dict) and isinstance(e.get("tenantId"), str) and e["tenantId"]}


@dataclass
class Checked:
    lines: list[str] = field(default_factory=list)
    tenants: set[str] = field(default_factory=set)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def check_events(events: list[Any], config: settings.Config) -> Checked:
    now = settings.now()
    skew = timedelta(hours=config.max_clock_skew_hours)
    allows_negative = _negative_rule(config)
    out = Checked()
    for index, record in enumerate(events):
        try:
            tenant, line = check_record(record, now=now, max_skew=skew, allows_negative=allows_negative)
        except InvalidEvent as exc:
            out.rejected.append({"index": index, "reason": exc.code, "field": exc.field, "detail": exc.reason})
            continue
        out.lines.append(line)
        out.tenants.add(tenant)
    return out


def _negative_rule(config: settings.Config):
    cache: dict[str, bool] = {}

    def allows(metric: str) -> bool:
        if metric not in cache:
            cache[metric] = config.metric(metric).allow_negative
        return cache[metric]

    return allows


def publish(writer: LandingWriter, checked: Checked) -> str | None:
    """One landing file for the accepted events; returns once it is durable."""
    if not checked.lines:
        return None
    tenant = next(iter(checked.tenants)) if len(checked.tenants) == 1 else "api"
    return writer.write("".join(checked.lines).encode("utf-8"), tenant)
