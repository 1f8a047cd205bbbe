"""The outbox in DuckDB: `stripe_pushes` (one row per push intent),
`stripe_push_state` (what Stripe acknowledged per counter) and
`stripe_push_adjustments` (carry-forwards' adjustments). SQL in sql/push/."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.lookup import PeriodIndex
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import ident, query, render_sql, run_script, temp_table_from_rows

_OUTCOME_SCHEMA = pa.schema([
    ("identifier", pa.string()), ("outcome", pa.string()), ("attempts", pa.int64()),
    ("sent_at", pa.timestamp("us")), ("acked_at", pa.timestamp("us")), ("note", pa.string()),
])


@dataclass(frozen=True)
class CounterKey:
    account: str
    mode: str
    tenant_id: str
    customer_ref: str
    metric: str
    period_start: datetime  # naive UTC


@dataclass
class PushState:
    stripe_customer: str
    event_name: str
    pushed_total: int = 0
    carried_in: int = 0
    last_value: int | None = None
    last_ts: int | None = None
    revision: int = 0


@dataclass
class Intent:
    identifier: str
    account: str
    mode: str
    shadow: bool
    tenant_id: str
    customer_ref: str
    stripe_customer: str
    metric: str
    event_name: str
    meter_id: str | None
    meter_formula: str
    unit_scale: int
    period_start: datetime
    period_end: datetime
    revision: int
    kind: str                      # delta | value | carry_forward
    origin_period: datetime | None
    value: int
    target_total: int
    event_ts: int
    status: str
    attempts: int = 0
    created_at: datetime | None = None
    last_error: str | None = None

    @property
    def stripe_account(self) -> str | None:
        return None if self.account == "platform" else self.account


@dataclass(frozen=True)
class Outcome:
    """What happened to one intent in this run."""

    identifier: str
    outcome: str                 # acknowledged | failed | pending
    attempts: int = 0
    sent_at: datetime | None = None
    acked_at: datetime | None = None
    note: str | None = None      # scrubbed error text, or why it was acknowledged without a send


def vanished(conn: duckdb.DuckDBPyConnection, counters: str, periods: list[datetime]) -> list[tuple]:
    """The counters (tenant, metric, customer_ref, period_start) of `periods` that have a push
    record but no row in TEMP table `counters` (rows of push/counters.sql)."""
    stmt = render_sql("push/vanished.sql", counters=ident(counters))
    return conn.execute(stmt, {"periods": [naive(p) for p in periods]}).fetchall()


def add_vanished(conn: duckdb.DuckDBPyConnection, config: Config, index: PeriodIndex, counters: str,
                 gone: list[tuple]) -> None:
    """Adds the `vanished` counters to TEMP table `counters`: they count zero now, over their own period."""
    if gone:
        conn.executemany(f"INSERT INTO {ident(counters)} BY NAME SELECT ? AS tenant_id, ? AS metric, "
                         "? AS customer_ref, ? AS period_start, ? AS period_end, ? AS aggregation, 0 AS value, "
                         "0 AS since_close",
                         [[tenant, metric, ref, start, index.end_of((tenant, metric, ref), start),
                           config.metric(metric).aggregation] for tenant, metric, ref, start in gone])


def load_states(conn: duckdb.DuckDBPyConnection, periods: list[datetime]) -> dict[CounterKey, PushState]:
    """The push state of every counter of `periods`."""
    out = {}
    for r in query(conn, "push/states.sql", periods=[naive(p) for p in periods]):
        key = CounterKey(r["account"], r["mode"], r["tenant_id"], r["customer_ref"], r["metric"], r["period_start"])
        out[key] = PushState(r["stripe_customer"], r["event_name"], r["pushed_total"], r["carried_in"],
                             r["last_value"], r["last_ts"], r["revision"])
    return out


def load_pending(conn: duckdb.DuckDBPyConnection) -> list[Intent]:
    return [Intent(**r) for r in query(conn, "push/pending.sql")]


def write_plan(conn: duckdb.DuckDBPyConnection, *, periods: list[datetime], now: datetime) -> None:
    """Step 1: every new intent of the plan (`planner.plan`, TEMP new_intents), and the
    revisions they consume, in the caller's transaction, before anything is sent."""
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
