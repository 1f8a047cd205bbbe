"""Row-level accounting of one landing file after a batch: every line of it
landed exactly (its fields round-trip), is a counted duplicate of an event
in the ledger, or is in quarantine with a reason; or the whole file is
rejected with an error."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from stripemeter_assets.ledger.keys import derive_key


@dataclass
class Line:
    """One line of a generated JSONL file: an event we expect to be valid
    (`event`, with `quantity` as the exact decimal text written), or any other
    text (`raw`), which may land only if it happens to be a valid event."""

    text: str
    event: dict | None = None


def utc_naive(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def expected_row(event: dict) -> dict:
    """The ledger row a valid event must become."""
    ts = utc_naive(event["ts"])
    quantity = Decimal(str(event["quantity"]))
    resource = event.get("resourceId") or None
    key = event.get("idempotencyKey") or derive_key(event["tenantId"], event["metric"], event["customerRef"],
                                                    resource, ts, quantity)
    return {
        "tenant_id": event["tenantId"], "metric": event["metric"], "customer_ref": event["customerRef"],
        "resource_id": resource, "quantity": quantity, "ts": ts, "idempotency_key": key,
        "key_derived": not event.get("idempotencyKey"),
        "meta": event.get("meta"),
    }


EVENT_COLUMNS = ("tenant_id", "metric", "customer_ref", "resource_id", "quantity", "ts", "idempotency_key",
                 "key_derived", "meta")


def check_file(env, path: Path, lines: list[Line], batch_id: str) -> str:
    """Asserts the accounting of `path` in `batch_id`; returns its status."""
    [(status, error, total, loaded, dup, quarantined)] = env.sql(
        "SELECT status, error, rows_total, rows_loaded, rows_duplicate, rows_quarantined FROM landing_files "
        "WHERE path = ? AND batch_id = ?", [str(path), batch_id])
    events = {r[0]: dict(zip(EVENT_COLUMNS, r[1:])) for r in env.sql(
        f"SELECT row_number, {', '.join(EVENT_COLUMNS)} FROM events WHERE source_file = ? AND batch_id = ?",
        [str(path), batch_id])}
    quarantine = {r[0]: r[1:] for r in env.sql(
        "SELECT row_number, reason, detail FROM quarantine WHERE source_file = ? AND batch_id = ? "
        "AND reason <> 'unparseable_file'", [str(path), batch_id])}
    if status == "skipped":  # same bytes as a file already loaded (in this batch or before)
        assert "same content" in error and not events and not quarantine and total == 0
        return status
    if status == "rejected":
        assert error and not events and not quarantine
        assert env.sql("SELECT count(*) FROM quarantine WHERE source_file = ? AND batch_id = ? "
                       "AND reason = 'unparseable_file'", [str(path), batch_id]) == [(1,)]
        return status
    assert status == "loaded", (status, error)
    numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.text.strip()]
    assert total == len(numbered) == loaded + dup + quarantined
    assert (len(events), len(quarantine)) == (loaded, quarantined)
    assert not set(events) & set(quarantine)
    assert all(reason for reason, _ in quarantine.values())
    duplicates = 0
    for n, line in numbered:
        if n in events:
            if line.event is not None:
                row = events[n]
                want = expected_row(line.event)
                if row["meta"] is not None:
                    row["meta"] = json.loads(row["meta"])
                assert row == want, f"line {n} did not round-trip"
        elif n in quarantine:
            if line.event is not None:  # only when its key already names a different event
                want = expected_row(line.event)
                assert quarantine[n][0] == "idempotency_conflict", f"valid event on line {n} quarantined: {quarantine[n]}"
                assert env.sql("SELECT count(*) FROM events WHERE tenant_id = ? AND idempotency_key = ?",
                               [want["tenant_id"], want["idempotency_key"]]) == [(1,)]
        else:
            duplicates += 1
            if line.event is not None:  # a duplicate only of an equal event already in the ledger
                want = expected_row(line.event)
                assert env.sql("SELECT count(*) FROM events WHERE tenant_id = ? AND idempotency_key = ? "
                               "AND quantity = ? AND ts = ?", [want["tenant_id"], want["idempotency_key"],
                                                              want["quantity"], want["ts"]]) == [(1,)]
    assert duplicates == dup
    return status
