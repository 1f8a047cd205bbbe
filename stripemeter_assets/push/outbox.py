"""The outbox in DuckDB: `stripe_pushes` (one row per push intent),
`stripe_push_state` (what Stripe acknowledged per counter) and
`stripe_push_adjustments` (carry-forwards' adjustments). SQL in sql/stripe/."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from stripemeter_assets.push.planner import (
    CounterKey,
    CounterRow,
    InFlight,
    Intent,
    OpenAdjustment,
    Plan,
    PushState,
)
from stripemeter_assets.push import targets
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.mapping import SUM_AGGREGATIONS
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import create_temp_table, ident, query, render_sql, run_script, temp_table_from_rows

_INTENT_SCHEMA = pa.schema([
    ("identifier", pa.string()), ("account", pa.string()), ("mode", pa.string()), ("shadow", pa.bool_()),
    ("tenant_id", pa.string()), ("customer_ref", pa.string()), ("stripe_customer", pa.string()),
    ("metric", pa.string()), ("event_name", pa.string()), ("meter_id", pa.string()),
    ("meter_formula", pa.string()), ("unit_scale", pa.int64()), ("period_start", pa.timestamp("us")),
    ("period_end", pa.timestamp("us")), ("revision", pa.int64()), ("kind", pa.string()),
    ("origin_period", pa.timestamp("us")), ("value", pa.int64()), ("target_total", pa.int64()),
    ("event_ts", pa.int64()), ("status", pa.string()), ("run_id", pa.string()), ("created_at", pa.timestamp("us")),
])
_LINK_SCHEMA = pa.schema([
    ("identifier", pa.string()), ("tenant_id", pa.string()), ("metric", pa.string()), ("customer_ref", pa.string()),
    ("origin_period", pa.timestamp("us")), ("recorded_at", pa.timestamp("us")), ("run_id", pa.string()),
])
_SETTLED_SCHEMA = pa.schema([
    ("tenant_id", pa.string()), ("metric", pa.string()), ("customer_ref", pa.string()),
    ("origin_period", pa.timestamp("us")), ("recorded_at", pa.timestamp("us")), ("run_id", pa.string()),
    ("target_period", pa.timestamp("us")),
])
_OUTCOME_SCHEMA = pa.schema([
    ("identifier", pa.string()), ("outcome", pa.string()), ("attempts", pa.int64()),
    ("sent_at", pa.timestamp("us")), ("acked_at", pa.timestamp("us")), ("note", pa.string()),
])


@dataclass(frozen=True)
class Outcome:
    """What happened to one intent in this run."""

    identifier: str
    outcome: str                 # acknowledged | failed | pending
    attempts: int = 0
    sent_at: datetime | None = None
    acked_at: datetime | None = None
    note: str | None = None      # scrubbed error text, or why it was acknowledged without a send


def _key(row: dict[str, Any]) -> CounterKey:
    return CounterKey(row["account"], row["mode"], row["tenant_id"], row["customer_ref"], row["metric"],
                      row["period_start"])


def load_counters_to_plan(conn: duckdb.DuckDBPyConnection, config: Config, keys: KeyStatus,
                          periods: list[datetime], now: datetime) -> tuple[list[CounterRow], list[CounterKey]]:
    """The mapped counters of `periods` the planner must look at (every one but those provably in
    step with Stripe: `push/plan_counters.sql`, kept as TEMP push_plan with the unmapped ones), and
    the keys of their vanished push records. Needs TEMP push_in_flight (`load_in_flight`)."""
    periods = [naive(p) for p in periods]
    create_temp_table(conn, "push_counters", "push/counters.sql", periods=periods)
    targets.load(conn, config, keys, "push_counters")
    run_script(conn, "periods/macros.sql")
    run_script(conn, "push/plan_counters.sql", now=naive(now), sum_aggregations=list(SUM_AGGREGATIONS))
    cur = conn.execute("SELECT tenant_id, metric, customer_ref, period_start, period_end, aggregation, value, "
                       "since_close FROM push_plan WHERE mapped ORDER BY period_start, tenant_id, metric, customer_ref")
    counters = [CounterRow(*r) for r in cur.fetchall()]
    return counters, load_vanished(conn, "push_counters", periods)


def load_unmapped(conn: duckdb.DuckDBPyConnection, examples: int) -> tuple[int, list[tuple[str, str, str]]]:
    """How many counters of TEMP push_plan are unmapped, and the first `examples` of them."""
    [row] = query(conn, "push/unmapped.sql", examples=examples)
    return row["counters"], [tuple(e) for e in row["examples"] or []]


def load_vanished(conn: duckdb.DuckDBPyConnection, counters: str, periods: list[datetime]) -> list[CounterKey]:
    """Keys of the push records of `periods` whose counter has no row in TEMP table `counters`."""
    stmt = render_sql("push/vanished.sql", counters=ident(counters))
    return [CounterKey(*r) for r in conn.execute(stmt, {"periods": [naive(p) for p in periods]}).fetchall()]


def load_states(conn: duckdb.DuckDBPyConnection, periods: list[datetime], *,
                pushed: list[datetime] | None = None) -> dict[CounterKey, PushState]:
    """The push state of `periods`; with `pushed` (the periods being pushed, after
    `load_counters_to_plan`), only what their plan reads (push/states_to_plan.sql)."""
    out = {}
    for r in query(conn, "push/states.sql" if pushed is None else "push/states_to_plan.sql",
                   periods=[naive(p) for p in periods], pushed=[naive(p) for p in pushed or []]):
        out[_key(r)] = PushState(r["stripe_customer"], r["event_name"], r["pushed_total"], r["carried_in"],
                                 r["last_value"], r["last_ts"], r["revision"])
    return out


def load_in_flight(conn: duckdb.DuckDBPyConnection) -> dict[CounterKey, InFlight]:
    """Pending intents per counter, also kept as TEMP push_in_flight."""
    create_temp_table(conn, "push_in_flight", "push/in_flight.sql")
    cur = conn.execute("SELECT * FROM push_in_flight")
    cols = [d[0] for d in cur.description]
    return {_key(r): InFlight(r["delta_sum"], r["carry_sum"], r["latest_value"], r["max_ts"], r["max_revision"])
            for r in (dict(zip(cols, row)) for row in cur.fetchall())}


def load_open_adjustments(conn: duckdb.DuckDBPyConnection) -> list[OpenAdjustment]:
    return [OpenAdjustment(**r) for r in query(conn, "push/open_adjustments.sql")]


def load_pending(conn: duckdb.DuckDBPyConnection) -> list[Intent]:
    return [Intent(**r) for r in query(conn, "push/pending.sql")]


def write_plan(conn: duckdb.DuckDBPyConnection, plan: Plan, *, periods: list[datetime], now: datetime,
               run_id: str) -> None:
    """Step 1: every new intent (and the revisions they consume) in the
    caller's transaction, before anything is sent."""
    intents = [{
        "identifier": i.identifier, "account": i.account, "mode": i.mode, "shadow": i.shadow,
        "tenant_id": i.tenant_id, "customer_ref": i.customer_ref, "stripe_customer": i.stripe_customer,
        "metric": i.metric, "event_name": i.event_name, "meter_id": i.meter_id, "meter_formula": i.meter_formula,
        "unit_scale": i.unit_scale, "period_start": i.period_start, "period_end": i.period_end,
        "revision": i.revision, "kind": i.kind, "origin_period": i.origin_period, "value": i.value,
        "target_total": i.target_total, "event_ts": i.event_ts, "status": i.status, "run_id": run_id,
        "created_at": naive(now),
    } for i in plan.intents]
    links = [{
        "identifier": i.identifier, "tenant_id": a.tenant_id, "metric": a.metric, "customer_ref": a.customer_ref,
        "origin_period": naive(a.origin_period), "recorded_at": a.recorded_at, "run_id": a.run_id,
    } for i in plan.intents for a in i.adjustments]
    settled = [{
        "tenant_id": a.tenant_id, "metric": a.metric, "customer_ref": a.customer_ref,
        "origin_period": naive(a.origin_period), "recorded_at": a.recorded_at, "run_id": a.run_id,
        "target_period": target,
    } for a, target in plan.settled]
    temp_table_from_rows(conn, "new_intents", intents, _INTENT_SCHEMA)
    temp_table_from_rows(conn, "new_links", links, _LINK_SCHEMA)
    temp_table_from_rows(conn, "settled_adjustments", settled, _SETTLED_SCHEMA)
    run_script(conn, "push/write_intents.sql", periods=[naive(p) for p in periods], now=naive(now))


def record_outcomes(conn: duckdb.DuckDBPyConnection, outcomes: Iterable[Outcome]) -> None:
    """Steps 3/4: acknowledgements with their pushed totals (and carried
    adjustments), failures, and attempts of intents left pending; call in
    one transaction."""
    rows = [{"identifier": o.identifier, "outcome": o.outcome, "attempts": o.attempts,
             "sent_at": naive(o.sent_at) if o.sent_at else None, "acked_at": naive(o.acked_at) if o.acked_at else None,
             "note": o.note} for o in outcomes]
    if not rows:
        return
    temp_table_from_rows(conn, "push_outcomes", rows, _OUTCOME_SCHEMA)
    run_script(conn, "push/record_outcomes.sql")


def acked_in_window(conn: duckdb.DuckDBPyConnection, *, mode: str, account: str, stripe_customer: str,
                    event_name: str, start_ts: int, end_ts: int) -> tuple[int, datetime | None]:
    """(Σ acknowledged values, when the latest was acknowledged) of one Stripe window."""
    [row] = query(conn, "push/acked_in_window.sql", mode=mode, account=account, stripe_customer=stripe_customer,
                  event_name=event_name, start_ts=start_ts, end_ts=end_ts)
    return row["acked_sum"], row["last_acked_at"]


def verified_customers(conn: duckdb.DuckDBPyConnection) -> set[tuple[str, str, str]]:
    """(mode, account, stripe_customer) Stripe is known to have."""
    return {(r["mode"], r["account"], r["stripe_customer"]) for r in query(conn, "push/verified_customers.sql")}


def count_pending(conn: duckdb.DuckDBPyConnection) -> int:
    return conn.execute("SELECT count(*) FROM stripe_pushes WHERE status = 'pending'").fetchone()[0]
