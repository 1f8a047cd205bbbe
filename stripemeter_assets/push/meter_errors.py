"""Pulling Stripe's meter error reports (DESIGN §4, "What Stripe checks later").

A 200 from `POST /v1/billing/meter_events` means "received": Stripe validates
the event afterwards and reports failures as thin v2 events
`v1.billing.meter.error_report_triggered` (per meter) and
`v1.billing.meter.no_meter_found`, listed at `GET /v2/core/events?object_id=`
and retrieved for their `data` (https://docs.stripe.com/api/v2/core/events/object).
Each run of the push first pulls the reports of every meter it sent to in the
last 30 days (what Stripe keeps), from a cursor per (mode, account, meter),
stores them in `stripe_meter_errors`, and applies them
(`sql/stripe/apply_meter_errors.sql`): named intents become
`rejected_by_stripe` and stop counting as pushed, so their counters are
planned again (and the checks before sending hold them back until the cause
is fixed); failures a report counts without naming put the meter's intents
of that validation window under verification.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from stripemeter_assets.push.client import GatewayFactory, PushCallError, scrub
from stripemeter_assets.push.pacing import Pacer
from stripemeter_assets.settings import naive
from stripemeter_assets.warehouse import query, run_script, transaction

ERROR_REPORT = "v1.billing.meter.error_report_triggered"
NO_METER_FOUND = "v1.billing.meter.no_meter_found"
NO_METER_CURSOR = "no_meter_found"
RETENTION = timedelta(days=30)  # "List events, going back up to 30 days" (SDK EventService.list)

# What each code means for the operator (recording-usage-api, "Error codes").
CAUSES = {
    "meter_event_customer_not_found": "the Stripe customer does not exist",
    "meter_event_no_customer_defined": "the event lacked the meter's customer payload key",
    "meter_event_value_not_found": "the event lacked the meter's value payload key",
    "meter_event_invalid_value": "the value was not a whole number of at most 15 significant digits",
    "archived_meter": "the meter was inactive",
    "no_meter": "no active meter had the event's event_name",
}

_ROW_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("meter", pa.string()), ("code", pa.string()), ("identifier", pa.string()),
    ("message", pa.string()), ("validation_start", pa.timestamp("us")), ("validation_end", pa.timestamp("us")),
    ("seen_at", pa.timestamp("us")), ("mode", pa.string()), ("account", pa.string()), ("error_count", pa.int64()),
])
_METER_SCHEMA = pa.schema([("mode", pa.string()), ("account", pa.string()), ("meter", pa.string()),
                           ("event_name", pa.string())])


def cause(code: str | None) -> str:
    return CAUSES.get(code or "", "see Stripe's error code reference")


@dataclass
class PullReport:
    reports: int = 0        # new error reports stored
    rejected: int = 0       # intents now rejected_by_stripe
    verifying: int = 0      # intents put under verification (failures not named)
    failures: list[str] = field(default_factory=list)


def _ts(text: Any) -> datetime | None:
    if not text:
        return None
    return naive(datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC))


def _rows(event: Any, *, meter: str | None, mode: str, account: str, now: datetime) -> list[dict[str, Any]]:
    data = event.data.to_dict() if hasattr(event.data, "to_dict") else dict(event.data)
    rows = []
    for kind in data["reason"]["error_types"]:
        samples = kind.get("sample_errors") or []
        base = {"event_id": event.id, "meter": meter, "code": kind["code"],
                "validation_start": _ts(data.get("validation_start")),
                "validation_end": _ts(data.get("validation_end")), "seen_at": now, "mode": mode,
                "account": account, "error_count": int(kind["error_count"])}
        for sample in samples:
            rows.append({**base, "identifier": sample["request"]["identifier"],
                         "message": sample.get("error_message")})
        if int(kind["error_count"]) > len(samples):
            rows.append({**base, "identifier": None,
                         "message": f"{int(kind['error_count']) - len(samples)} failed event(s) not named in the "
                                    "report's samples"})
    return rows


def _temp(conn: duckdb.DuckDBPyConnection, name: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    conn.register(f"_{name}_arrow", pa.Table.from_pylist(rows, schema=schema))
    try:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}_arrow")
    finally:
        conn.unregister(f"_{name}_arrow")


def pull_error_reports(conn: duckdb.DuckDBPyConnection, gateways: GatewayFactory, pacer: Pacer,
                       now: datetime) -> PullReport:
    now = naive(now)
    report = PullReport()
    targets: dict[tuple[str, str, bool], set[str]] = defaultdict(set)
    for t in query(conn, "push/error_report_targets.sql", since=now - RETENTION):
        targets[(t["mode"], t["account"], t["shadow"])].add(t["event_name"])
    if not targets:
        return report
    cursors = {(r[0], r[1], r[2]): r[3] for r in conn.execute(
        "SELECT mode, account, meter, created_from FROM stripe_meter_error_cursor").fetchall()}
    known = {r[0] for r in conn.execute(
        "SELECT DISTINCT event_id FROM stripe_meter_errors WHERE seen_at >= ?", [now - RETENTION]).fetchall()}
    rows: list[dict[str, Any]] = []
    meters: list[dict[str, Any]] = []
    moved: dict[tuple[str, str, str], datetime] = {}
    for (mode, account, shadow), event_names in sorted(targets.items()):
        gateway = gateways(mode, None if account == "platform" else account, shadow)
        if gateway is None:
            continue
        try:
            pacer.acquire(mode, "general", gateway.account)
            mapped = [m for m in gateway.meters() if m.event_name in event_names]
            meters += [{"mode": mode, "account": account, "meter": m.id, "event_name": m.event_name} for m in mapped]
            sources = [(m.id, m.id) for m in mapped] + [(None, NO_METER_CURSOR)]
            for meter_id, cursor_key in sources:
                start = cursors.get((mode, account, cursor_key))
                events = gateway.error_reports(
                    object_id=meter_id, types=None if meter_id else [NO_METER_FOUND],
                    created_from=start.strftime("%Y-%m-%dT%H:%M:%S.000Z") if start else None,
                    pace=lambda g=gateway: pacer.acquire(g.mode, "general", g.account))
                for event in events:
                    created = _ts(event.created)
                    if created is not None:
                        key = (mode, account, cursor_key)
                        moved[key] = max(moved.get(key, created), created)
                    if event.id in known or event.type not in (ERROR_REPORT, NO_METER_FOUND):
                        continue
                    known.add(event.id)
                    report.reports += 1
                    rows += _rows(event, meter=meter_id, mode=mode, account=account, now=now)
        except PushCallError as exc:
            report.failures.append(scrub(f"{mode}/{account}: could not pull Stripe's error reports: {exc}"))
    with transaction(conn):
        if rows:
            _temp(conn, "new_meter_errors", rows, _ROW_SCHEMA)
            _temp(conn, "error_meters", meters, _METER_SCHEMA)
            before = conn.execute("SELECT count(*) FILTER (WHERE status = 'rejected_by_stripe') FROM stripe_pushes"
                                  ).fetchone()[0]
            verifying = conn.execute("SELECT count(*) FROM stripe_push_verifications").fetchone()[0]
            run_script(conn, "push/apply_meter_errors.sql", now=now)
            report.rejected = conn.execute("SELECT count(*) FILTER (WHERE status = 'rejected_by_stripe') "
                                           "FROM stripe_pushes").fetchone()[0] - before
            report.verifying = conn.execute("SELECT count(*) FROM stripe_push_verifications").fetchone()[0] - verifying
        for (mode, account, meter), created in moved.items():
            conn.execute("DELETE FROM stripe_meter_error_cursor WHERE mode = ? AND account = ? AND meter = ?",
                         [mode, account, meter])
            conn.execute("INSERT INTO stripe_meter_error_cursor VALUES (?, ?, ?, ?, ?)",
                         [mode, account, meter, created, now])
    return report
