"""Soak: many small batches with retries and late data, counters kept current
the way the sensors do it, then a replay over the whole range; every step
checked against an independent model of the unique events in Python."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from stripemeter_assets.counters.recompute import recompute_days, recompute_periods, replay
from stripemeter_assets.settings import next_month
from stripemeter_assets.ledger import ingest_batch, list_ready_files
from stripemeter_assets.settings import load_config
from stripemeter_assets.warehouse import connect, transaction
from tests.conftest import BASE_CONFIG, NOW, utc
from tests.reliability.conftest import assert_ledger_consistent, same_rows

BATCHES = 50
EVENTS_PER_BATCH = 200
RETRY_SHARE = 0.05
LATE_SHARE = 0.02
TIME_BUDGET_S = 45.0   # batches stop early past this (slow machine); the checks still run
MIN_BATCHES = 20
LATENESS = timedelta(hours=BASE_CONFIG["lateness_hours"])
AGGREGATION = {name: spec["aggregation"] for name, spec in BASE_CONFIG["metrics"].items()}
TENANTS = ["acme", "globex", "initech"]
CUSTOMERS = [f"cus_{i:02d}" for i in range(8)]
START = datetime(2025, 2, 18)       # batches walk forward from here to just before NOW
END = utc(NOW).replace(tzinfo=None) - timedelta(hours=2)


@dataclass(frozen=True)
class Ev:
    tenant: str
    metric: str
    customer: str
    quantity: Decimal
    ts: datetime
    key: str | None

    @property
    def counter(self) -> tuple[str, str, str]:
        return self.tenant, self.metric, self.customer

    def as_json(self) -> dict:
        body = {"tenantId": self.tenant, "metric": self.metric, "customerRef": self.customer,
                "quantity": str(self.quantity), "ts": self.ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if self.key:
            body["idempotencyKey"] = self.key
        return body


class Model:
    """The unique events, which of them are pending-late, and the counters
    they must produce, computed without the warehouse."""

    def __init__(self):
        self.landed: dict[tuple, Ev] = {}   # identity -> event, first copy only
        self.order: dict[tuple, int] = {}   # identity -> ingestion order (the `last` tie-break)
        self.watermark: dict[tuple, datetime] = {}
        self.pending: set[tuple] = set()

    @staticmethod
    def identity(ev: Ev) -> tuple:
        return (ev.tenant, ev.key) if ev.key else (ev.tenant, ev.metric, ev.customer, ev.ts, ev.quantity)

    def ingest(self, batch: list[Ev]) -> None:
        new = []
        for ev in batch:
            ident = self.identity(ev)
            if ident in self.landed:
                continue
            self.landed[ident] = ev
            self.order[ident] = len(self.order)
            new.append(ident)
        # Lateness is judged against the watermarks as they stood before the batch.
        for ident in new:
            ev = self.landed[ident]
            mark = self.watermark.get(ev.counter)
            if mark is not None and mark - ev.ts > LATENESS:
                self.pending.add(ident)
        for ident in new:
            ev = self.landed[ident]
            self.watermark[ev.counter] = max(self.watermark.get(ev.counter, ev.ts), ev.ts)

    def periods(self, include_pending: bool) -> list[tuple]:
        groups: dict[tuple, list[tuple]] = defaultdict(list)
        for ident, ev in self.landed.items():
            if ident in self.pending and not include_pending:
                continue
            groups[ev.counter + (datetime(ev.ts.year, ev.ts.month, 1),)].append(ident)
        rows = []
        for (tenant, metric, customer, month), idents in groups.items():
            evs = [self.landed[i] for i in idents]
            agg = AGGREGATION.get(metric, "sum")
            if agg == "sum":
                value = sum((e.quantity for e in evs), Decimal(0))
            elif agg == "count":
                value = Decimal(len(evs))
            elif agg == "max":
                value = max(e.quantity for e in evs)
            else:
                latest = max(idents, key=lambda i: (self.landed[i].ts, self.order[i]))
                value = self.landed[latest].quantity
            rows.append((tenant, metric, customer, month, agg, value, len(evs)))
        return sorted(rows)


def _quantity(rng: random.Random, metric: str) -> Decimal:
    value = Decimal(rng.randint(0, 500_000)) / Decimal(1000)
    return -value if metric == "credits" and rng.random() < 0.3 else value


def _write(path, events: list[Ev], fmt: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")  # atomic publish, as producers must
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["tenantId", "metric", "customerRef", "quantity", "ts",
                                                 "idempotencyKey"], lineterminator="\n")
        writer.writeheader()
        for ev in events:
            writer.writerow(ev.as_json())
        tmp.write_text(buf.getvalue())
    else:
        text = "".join(json.dumps(ev.as_json()) + "\n" for ev in events).encode()
        tmp.write_bytes(gzip.compress(text) if fmt == "jsonl.gz" else text)
    tmp.rename(path)


@pytest.mark.soak
def test_soak_batches_with_retries_and_late_events_match_an_independent_recomputation(env):
    rng = random.Random(7)
    model = Model()
    config, now = load_config(), utc(NOW)
    sent: list[Ev] = []
    written: list[Path] = []
    used_ts: set[datetime] = set()
    span = (END - START) / BATCHES
    started = time.monotonic()
    stats = defaultdict(int)
    late_sent: set[tuple] = set()
    batches_done = 0

    def unique_ts(ts: datetime) -> datetime:
        while ts in used_ts:  # no two events share a ts: `last` never needs the tie-break
            ts += timedelta(microseconds=1)
        used_ts.add(ts)
        return ts

    for b in range(BATCHES):
        if b >= MIN_BATCHES and time.monotonic() - started > TIME_BUDGET_S:
            break
        window = START + span * b
        batch: list[Ev] = []
        for _ in range(EVENTS_PER_BATCH):
            roll = rng.random()
            if sent and roll < RETRY_SHARE:
                batch.append(rng.choice(sent))  # an exact re-send of an earlier event
                stats["retries"] += 1
                continue
            tenant, metric, customer = rng.choice(TENANTS), rng.choice(list(AGGREGATION)), rng.choice(CUSTOMERS)
            ts = window + timedelta(seconds=rng.uniform(0, span.total_seconds()))
            late = RETRY_SHARE <= roll < RETRY_SHARE + LATE_SHARE
            if late:
                mark = model.watermark.get((tenant, metric, customer), ts)
                back = rng.choice([rng.uniform(1, 40), rng.uniform(60, 400)])  # within / beyond 48 h
                ts = mark - timedelta(hours=back)
                stats["late"] += 1
            ts = unique_ts(ts.replace(microsecond=rng.randrange(1_000_000)))
            key = f"evt-{b}-{len(batch)}" if rng.random() < 0.7 else None
            batch.append(Ev(tenant, metric, customer, _quantity(rng, metric), ts, key))
            if late:
                late_sent.add(Model.identity(batch[-1]))
        sent.extend(batch)

        fmt = ["jsonl", "jsonl.gz", "csv"][b % 3]
        path = env.landing / f"batch-{b:03d}.{fmt}"
        _write(path, batch, fmt)
        new = {str(path)}
        if b % 7 == 6:  # a producer re-publishes an earlier file, byte for byte, under a new name
            old = rng.choice(written)
            shutil.copyfile(old, env.landing / f"redrop-{b:03d}-{old.name}")
            new.add(str(env.landing / f"redrop-{b:03d}-{old.name}"))
            stats["redrops"] += 1
        written.append(path)

        # What the landing sensor requests: the files new since its last tick.
        files = [f for f in list_ready_files(str(env.landing), settle=0) if f.path in new]
        with connect(str(env.warehouse)) as conn:
            result = ingest_batch(conn, files, batch_id=f"b{b:03d}", config=config, now=now)
        model.ingest(batch)
        assert result.count("rejected") == 0 and result.total("rows_quarantined") == 0
        assert result.count("skipped") == len(new) - 1
        # What the watermark sensor requests: the days the batch touched, then their periods.
        days = sorted({datetime.fromisoformat(d["day"]) for d in result.days})
        with connect(str(env.warehouse)) as conn, transaction(conn):
            for day in days:
                recompute_days(conn, day, day + timedelta(days=1), now)
            for month in sorted({d.replace(day=1) for d in days}):
                recompute_periods(conn, config, month, next_month(month), now, f"b{b:03d}")
        batches_done += 1
        if b % 10 == 9:
            same_rows(_periods(env), model.periods(include_pending=False), f"period_usage after batch {b}")

    assert batches_done >= MIN_BATCHES
    assert stats["retries"] and stats["late"] and stats["redrops"]
    # Both kinds of lateness happened: folded in by the "sensor" recomputes, and pending.
    assert late_sent & model.pending and late_sent - model.pending
    assert_ledger_consistent(env)
    assert env.sql("SELECT count(*) FROM events") == [(len(model.landed),)]
    assert sorted(env.sql("SELECT tenant_id, idempotency_key FROM late_events WHERE status = 'pending'")) == sorted(
        (ident[0], _stored_key(env, model.landed[ident])) for ident in model.pending)
    same_rows(_periods(env), model.periods(include_pending=False), "period_usage before the replay")

    with connect(str(env.warehouse)) as conn:
        result = replay(conn, config, datetime(2025, 1, 1), datetime(2025, 4, 1), now=now, run_id="soak-replay")
    assert result.late_applied == len(model.pending)
    assert env.sql("SELECT count(*) FROM late_events WHERE status = 'pending'") == [(0,)]
    same_rows(_periods(env), model.periods(include_pending=True), "period_usage after the replay")


def _periods(env) -> list[tuple]:
    return env.sql("SELECT tenant_id, metric, customer_ref, period_start, aggregation, value, event_count "
                   "FROM period_usage ORDER BY ALL")


def _stored_key(env, ev: Ev) -> str:
    from stripemeter_assets.ledger.keys import derive_key

    return ev.key or derive_key(ev.tenant, ev.metric, ev.customer, None, ev.ts, ev.quantity)
