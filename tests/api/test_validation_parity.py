"""The API's checks are the ingest's: for hostile events, the API accepts
exactly what the file ingest loads and refuses the rest with the reason the
ingest quarantines them with."""

from __future__ import annotations

import json

from stripemeter_assets import settings
from stripemeter_assets.api.ingest import check_events, parse_body
from tests.conftest import event

CASES = [
    event(),
    event(quantity=5),
    event(quantity=0.1),
    event(quantity="1e3"),
    event(quantity=" 7 "),
    event(quantity="1.0000000001"),
    event(quantity="123456789012345678901234567890"),
    event(quantity="-1"),
    event(metric="credits", quantity="-1"),
    event(quantity=""),
    event(quantity=None),
    event(quantity="NaN"),
    event(quantity="Infinity"),
    event(quantity=[1]),
    event(quantity=True),
    event(ts="2025-03-10"),
    event(ts="2025-03-10 10:00:00"),
    event(ts="2025-03-10t10:00:00z"),
    event(ts="2025-03-10T10:00"),
    event(ts="2025-03-10T10:00:00+24:00"),
    event(ts="2025-03-10T10:00:00-05:30"),
    event(ts=" 2025-03-10T10:00:00Z"),
    event(ts="2025-03-10T10:00:00"),
    event(ts="2025-03-10T10:00:00+02:00"),
    event(ts="2025-03-10T10:00:00.123456789Z"),
    event(ts="2025-13-10T10:00:00Z"),
    event(ts="2025-03-20T12:59:59Z"),
    event(ts="2025-03-20T13:00:01Z"),
    event(ts=1741600800),
    event(ts="2023-12-31T23:59:59Z"),      # before the first partition
    event(ts="0001-01-01T00:00:00Z"),
    event(ts=""),
    event(tenant=""),
    event(tenant="t" * 128),
    event(tenant="t" * 129),
    event(customer="é" * 255),
    event(customer="é" * 256),
    event(idempotencyKey=""),
    event(idempotencyKey="k" * 256),
    event(idempotencyKey=42),
    event(resourceId=7),
    event(resourceId=""),
    event(meta=[1, 2]),
    event(meta="text"),
    event(meta={"nested": {"a": [1, 2.5, None]}}),
    event(metric=5),
    "not an object",
    [1, 2],
    {},
]


def test_api_verdicts_match_the_ingest(env):
    body = json.dumps({"events": CASES}).encode()
    checked = check_events(parse_body(body), settings.load_config())
    api = {r["index"]: r["reason"] for r in checked.rejected}

    env.drop_text("cases.jsonl", "".join(json.dumps(c) + "\n" for c in CASES))
    env.ingest()
    ingest = {row - 1: reason for row, reason in env.sql("SELECT row_number, reason FROM quarantine")}
    loaded = {row - 1 for (row,) in env.sql("SELECT row_number FROM events")}

    mismatches = {i: (json.dumps(CASES[i])[:120], api.get(i), ingest.get(i)) for i in range(len(CASES))
                  if api.get(i) != ingest.get(i)}
    assert not mismatches, "\n".join(f"{i}: {c} api={a} ingest={g}" for i, (c, a, g) in mismatches.items())
    accepted = set(range(len(CASES))) - set(api)
    # Accepted events are loaded, or are duplicates of one that was (same derived key).
    assert loaded <= accepted
    assert env.sql("SELECT rows_loaded + rows_duplicate FROM landing_files") == [(len(accepted),)]
