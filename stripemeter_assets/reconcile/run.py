"""One reconciliation of a billing period: build the period's rows in SQL
(`frame`), fetch Stripe's totals for the mapped ones, compare, auto-correct
under-reports through the push, and store the rows.

Auto-correct (under-reports only; over-reports are reported, never
"corrected"): the counter's acknowledged state in `stripe_push_state` is
set back to what Stripe was seen to hold (sum meters: `pushed_total =
stripe_total − carried_in`; last meters: `last_value = stripe_total`), with
an audit row in `reconciliation_corrections`, in one transaction. Then the
push itself runs for the period (`push.run.run_push`): its planner sees the
gap as an ordinary delta (or a changed value), gives it the counter's next
revision — a new deterministic identifier, so Stripe's memory of the old,
lost identifiers (and their idempotency keys) cannot swallow it — writes
the intent to the outbox before sending, and acknowledges it with the new
pushed total. Nothing is sent outside that protocol. A re-run with Stripe
already matching finds no under-report and sends nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from stripemeter_assets.push import outbox
from stripemeter_assets.push.client import GatewayFactory, KeyStatus, scrub
from stripemeter_assets.push.outbox import CounterKey
from stripemeter_assets.push.run import PushOptions, PushReport, run_push
from stripemeter_assets.reconcile import compare, frame, report
from stripemeter_assets.reconcile.compare import Row
from stripemeter_assets.reconcile.stripe_totals import StripeTotals, SummaryError, aligned_window
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import query, run_script, temp_table_from_rows, transaction


@dataclass(frozen=True)
class ReconcileOptions:
    epsilon: Decimal = compare.DEFAULT_EPSILON
    settle: timedelta = compare.DEFAULT_SETTLE
    auto_correct: bool = True


@dataclass
class ReconcileResult:
    period_start: datetime
    rows: list[Row] = field(default_factory=list)  # the rows Stripe was asked about
    counts: dict[str, int] = field(default_factory=dict)  # every stored row, per status
    corrections: int = 0
    push_report: PushReport | None = None
    stripe_calls: int = 0
    too_large: list[str] = field(default_factory=list)  # counters left out: frame.too_large


_ROW_SCHEMA = pa.schema([
    ("tenant_id", pa.string()), ("customer_ref", pa.string()), ("metric", pa.string()),
    ("period_start", pa.timestamp("us")), ("period_end", pa.timestamp("us")), ("stripe_customer", pa.string()),
    ("event_name", pa.string()), ("account", pa.string()), ("mode", pa.string()), ("meter_formula", pa.string()),
    ("unit_scale", pa.int64()), ("local_value", pa.decimal128(38, 9)), ("local_total", pa.decimal128(38, 9)),
    ("pushed_total", pa.decimal128(38, 9)), ("stripe_total", pa.decimal128(38, 9)), ("drift", pa.decimal128(38, 9)),
    ("relative_drift", pa.decimal128(38, 9)), ("status", pa.string()), ("cause", pa.string()),
    ("corrected", pa.bool_()), ("window_start", pa.int64()), ("window_end", pa.int64()), ("run_id", pa.string()),
    ("checked_at", pa.timestamp("us")),
])
_READ_SCHEMA = pa.schema([
    ("account", pa.string()), ("mode", pa.string()), ("tenant_id", pa.string()), ("customer_ref", pa.string()),
    ("metric", pa.string()), ("period_start", pa.timestamp("us")), ("stripe_total", pa.int64()),
    ("read_at", pa.timestamp("us")),
])
_Q = Decimal("0.000000001")


def _dec(v: Any) -> Decimal | None:
    return None if v is None else Decimal(v).quantize(_Q)


class _Reconciler:
    def __init__(self, conn: duckdb.DuckDBPyConnection, config: Config, keys: KeyStatus, totals: StripeTotals,
                 now: datetime, options: ReconcileOptions):
        self.conn = conn
        self.config = config
        self.keys = keys
        self.totals = totals
        self.now = naive(now)
        self.options = options

    def rows(self, period: datetime) -> list[Row]:
        """Builds the period's frame (every counter, in SQL) and returns the rows Stripe is asked about."""
        frame.build(self.conn, self.config, self.keys, period, self.now)
        return frame.rows_to_read(self.conn)

    # -- Stripe ---------------------------------------------------------------
    def fetch(self, row: Row) -> None:
        if not row.mapped:
            return
        row.stripe_error = self.totals.unavailable(row.mode, row.shadow)
        if row.stripe_error is not None:
            return
        row.window_start, row.window_end = aligned_window(row.period_start, row.period_end, self.now)
        try:
            row.stripe_total = self.totals.total(
                mode=row.mode, account=None if row.account == "platform" else row.account, shadow=row.shadow,
                event_name=row.event_name, meter_id=row.meter_id, customer=row.stripe_customer,
                start=row.window_start, end=row.window_end)
        except SummaryError as exc:
            row.stripe_total, row.stripe_error = None, scrub(str(exc))

    def classify(self, row: Row) -> Row:
        return compare.classify(row, epsilon=self.options.epsilon, now=self.now, settle=self.options.settle)

    # -- eventual consistency -------------------------------------------------
    def confirmed(self, row: Row) -> bool:
        """An under-report counts only when a read at least the settle delay
        earlier saw the same Stripe total; until then the row is pending."""
        earlier = query(self.conn, "reconcile/earlier_read.sql", account=row.account, mode=row.mode,
                        tenant_id=row.tenant_id, customer_ref=row.customer_ref, metric=row.metric,
                        period_start=row.period_start, before=self.now - self.options.settle)
        if earlier and earlier[0]["stripe_total"] == row.stripe_total:
            row.cause += (f"; confirmed by the read of {earlier[0]['read_at']:%Y-%m-%d %H:%M} UTC "
                          f"(Stripe's summaries are eventually consistent)")
            return True
        minutes = int(self.options.settle.total_seconds() // 60)
        row.status = compare.PENDING
        row.cause = (f"{compare.direction(row)}; not trusted yet: Stripe's summaries are eventually consistent, "
                     f"so it is re-sent only when a read at least {minutes} min later agrees")
        return False

    def close_verifications(self, rows: list[Row]) -> None:
        """A settled summary decides the intents under verification: matched
        (verified) or below the local total (short, an under-report)."""
        for r in rows:
            if not r.verifying or r.status not in (compare.OK, compare.DRIFT):
                continue
            short = r.stripe_total is not None and r.stripe_total < r.local_total
            run_script(self.conn, "reconcile/close_verifications.sql", status="short" if short else "verified",
                       now=self.now, account=r.account, mode=r.mode, tenant_id=r.tenant_id,
                       customer_ref=r.customer_ref, metric=r.metric, period_start=r.period_start)

    def record_reads(self, rows: list[Row]) -> None:
        reads = [{"account": r.account, "mode": r.mode, "tenant_id": r.tenant_id, "customer_ref": r.customer_ref,
                  "metric": r.metric, "period_start": r.period_start, "stripe_total": r.stripe_total,
                  "read_at": self.now} for r in rows if r.mapped and r.stripe_total is not None]
        with transaction(self.conn):
            temp_table_from_rows(self.conn, "summary_reads", reads, _READ_SCHEMA)
            run_script(self.conn, "reconcile/summary_reads.sql", now=self.now)

    # -- auto-correct ---------------------------------------------------------
    def reset_state(self, rows: list[Row], run_id: str) -> list[Row]:
        """Sets each under-reported counter's acknowledged state back to
        what Stripe holds, with an audit row; returns the rows reset."""
        states = outbox.load_states(self.conn, [rows[0].period_start])
        reset = []
        with transaction(self.conn):
            for r in rows:
                key = CounterKey(r.account, r.mode, r.tenant_id, r.customer_ref, r.metric, r.period_start)
                state = states.get(key)
                if state is None:  # never pushed: the push plans it anyway
                    continue
                if r.meter_formula == "sum":
                    old, new, column = state.pushed_total, r.stripe_total - state.carried_in, "pushed_total"
                else:
                    old, new, column = state.last_value, r.stripe_total, "last_value"
                self.conn.execute(
                    f"UPDATE stripe_push_state SET {column} = ?, updated_at = ? WHERE account = ? AND mode = ? "
                    "AND tenant_id = ? AND customer_ref = ? AND metric = ? AND period_start = ?",
                    [new, self.now, r.account, r.mode, r.tenant_id, r.customer_ref, r.metric, r.period_start])
                self.conn.execute(
                    "INSERT INTO reconciliation_corrections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [r.tenant_id, r.customer_ref, r.metric, r.period_start, r.account, r.mode, r.meter_formula,
                     r.local_total, r.stripe_total, old, new, r.local_total - r.stripe_total, run_id, self.now])
                reset.append(r)
        return reset


def reconcile_period(conn: duckdb.DuckDBPyConnection, *, config: Config, period: datetime, now: datetime,
                     run_id: str, keys: KeyStatus, totals: StripeTotals, gateways: GatewayFactory,
                     push_options: PushOptions, options: ReconcileOptions,
                     log: logging.Logger | Any) -> ReconcileResult:
    """Reconciles one period and replaces its rows of `reconciliation`."""
    rec = _Reconciler(conn, config, keys, totals, now, options)
    result = ReconcileResult(naive(period))
    rows = rec.rows(period)
    result.too_large = frame.too_large(conn)
    for row in rows:
        rec.fetch(row)
        rec.classify(row)
    under = [r for r in rows if compare.is_under_report(r) and rec.confirmed(r)]
    rec.record_reads(rows)
    with transaction(conn):
        rec.close_verifications(rows)
    if under and options.auto_correct:
        reset = rec.reset_state(under, run_id)
        log.info(f"reconciliation: re-sending {len(reset)} under-reported counter(s) through the push")
        result.push_report = run_push(conn, config=config, periods=[naive(period)], now=now, run_id=run_id,
                                      gateways=gateways, keys=keys, options=push_options, log=log)
        fresh = rec.rows(period)
        fresh_by = {(r.tenant_id, r.customer_ref, r.metric): r for r in fresh}
        for r in reset:
            missing = r.local_total - (r.stripe_total or 0)
            new = fresh_by[(r.tenant_id, r.customer_ref, r.metric)]
            rec.fetch(new)
            rec.classify(new)
            new.corrected = True
            new.cause = (f"under-report corrected: re-sent {missing} unit(s) through the push outbox; now {new.cause}"
                         f" (found: {r.cause})")
            rows[rows.index(r)] = new
        result.corrections = len(reset)
    result.rows = rows
    result.stripe_calls = totals.calls
    store(conn, result, run_id=run_id, now=now)
    result.counts = report.status_counts(conn, result.period_start)
    return result


def store(conn: duckdb.DuckDBPyConnection, result: ReconcileResult, *, run_id: str, now: datetime) -> None:
    data = [{
        "tenant_id": r.tenant_id, "customer_ref": r.customer_ref, "metric": r.metric,
        "period_start": r.period_start, "period_end": r.period_end, "stripe_customer": r.stripe_customer,
        "event_name": r.event_name, "account": r.account, "mode": r.mode, "meter_formula": r.meter_formula,
        "unit_scale": r.unit_scale, "local_value": _dec(r.local_value), "local_total": _dec(r.local_total),
        "pushed_total": _dec(r.pushed_total), "stripe_total": _dec(r.stripe_total), "drift": _dec(r.drift),
        "relative_drift": _dec(r.relative_drift), "status": r.status, "cause": r.cause, "corrected": r.corrected,
        "window_start": r.window_start, "window_end": r.window_end, "run_id": run_id, "checked_at": naive(now),
    } for r in result.rows]
    with transaction(conn):
        temp_table_from_rows(conn, "reconciliation_rows", data, _ROW_SCHEMA)
        run_script(conn, "reconcile/replace.sql", period_start=result.period_start, run_id=run_id,
                   checked_at=naive(now))
