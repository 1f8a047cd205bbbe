"""One invoice reconciliation run: the counters of the periods overlapping a window of days,
their billing periods and prices, and what Stripe's invoices say, into
`invoice_reconciliation`."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.build import ReaderFactory
from stripemeter_assets.periods.close import Grace
from stripemeter_assets.periods.lookup import period_starts
from stripemeter_assets.periods.stripe_read import InvoiceLine
from stripemeter_assets.push import outbox
from stripemeter_assets.push.client import KeyStatus, key_mode, read_key
from stripemeter_assets.push.mapping import PLATFORM
from stripemeter_assets.push.planner import CounterKey, mode_for, scaled
from stripemeter_assets.settings import naive
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import run_script, transaction

from . import compare
from .compare import Row

_ROW_SCHEMA = pa.schema([
    ("tenant_id", pa.string()), ("customer_ref", pa.string()), ("metric", pa.string()),
    ("subscription_item", pa.string()), ("period_start", pa.timestamp("us")), ("period_end", pa.timestamp("us")),
    ("local_total", pa.decimal128(38, 9)), ("local_amount", pa.decimal128(38, 9)),
    ("stripe_quantity", pa.decimal128(38, 9)), ("stripe_amount", pa.decimal128(38, 9)), ("currency", pa.string()),
    ("invoice", pa.string()), ("invoice_status", pa.string()), ("money_at_stake", pa.decimal128(38, 9)),
    ("status", pa.string()), ("cause", pa.string()), ("checked_at", pa.timestamp("us")), ("run_id", pa.string()),
])
_Q = Decimal("0.000000001")


def reconcile_invoices(conn: duckdb.DuckDBPyConnection, config: Config, *, start: datetime, end: datetime,
                       now: datetime, run_id: str, reader_for: ReaderFactory) -> tuple[list[Row], int]:
    """Rows for every mapped counter of the periods overlapping [start, end); replaces them in
    `invoice_reconciliation`. Returns the rows and the number of Stripe calls."""
    now = naive(now)
    mapping = config.stripe
    grace = Grace(config)
    keys = KeyStatus.from_env()
    periods = period_starts(conn, start, end)
    counters = outbox.load_counters(conn, periods)
    states = outbox.load_states(conn, periods)
    billing = {(t, m, c, s): (src, item, price, acct) for t, m, c, s, src, item, price, acct in conn.execute(
        "SELECT tenant_id, metric, customer_ref, period_start, source, subscription_item, price, account "
        "FROM billing_periods WHERE period_start IN (SELECT unnest(?::TIMESTAMP[]))", [periods]).fetchall()}
    prices = {(a, p): json.loads(body) for a, p, body in conn.execute(
        "SELECT account, price, body FROM billing_prices").fetchall()}
    in_flight = {tuple(r) for r in conn.execute(
        "SELECT DISTINCT tenant_id, customer_ref, metric, period_start FROM stripe_pushes WHERE status = 'pending'"
    ).fetchall()}
    last_ack = {(t, c, m, s): a for t, c, m, s, a in conn.execute(
        "SELECT tenant_id, customer_ref, metric, period_start, max(acked_at) FROM stripe_pushes "
        "WHERE acked_at IS NOT NULL GROUP BY ALL").fetchall()}

    # What each account's Stripe says: invoice lines, and previews of the open periods.
    wanted: dict[tuple[bool, str], set[str]] = defaultdict(set)
    for c in counters:
        target = mapping.target(c.tenant_id, c.metric, c.customer_ref)
        if target is not None:
            wanted[(target.shadow, target.account)].add(target.event_name)
    lines: dict[tuple[str, datetime], InvoiceLine] = {}
    meter_price: dict[tuple[str, str], dict[str, Any]] = {}
    calls = 0
    since = min(periods, default=now) - timedelta(days=1)
    for (shadow, account), event_names in sorted(wanted.items()):
        key = read_key(shadow)
        if key is None:
            continue
        reader = reader_for(key, key_mode(key) or "live", None if account == PLATFORM else account)
        seen = reader.read(event_names, invoices_since=since)
        for line in seen.lines:
            lines[(line.subscription_item, line.period_start)] = line
        for event_name, meter_id in seen.meters.items():
            matching = sorted((p for p in seen.prices.values() if p["recurring"]["meter"] == meter_id),
                              key=lambda p: p["id"])
            if matching:
                meter_price[(account, event_name)] = matching[0]
        previewed: set[str] = set()
        for period in seen.periods:
            sub = seen.subscriptions[period.subscription_item]
            if period.period_start <= now < period.period_end and sub not in previewed:
                previewed.add(sub)
                for line in reader.preview(period.stripe_customer, sub):
                    lines.setdefault((line.subscription_item, line.period_start), line)
        calls += reader.calls

    rows = []
    for c in counters:
        target = mapping.target(c.tenant_id, c.metric, c.customer_ref)
        if target is None:
            continue  # unmapped: the meter reconciliation reports it
        scale = config.metric(c.metric).unit_scale
        closed = grace.is_closed(c.tenant_id, c.metric, naive(c.period_end), now)
        value = Decimal(c.value) - (Decimal(c.since_close) if closed else 0)
        state = states.get(CounterKey(target.account, mode_for(target, keys), c.tenant_id, c.customer_ref, c.metric,
                                      naive(c.period_start)))
        local = Decimal(scaled(value, scale) + (state.carried_in if state else 0))
        src, item, price_id, account = billing.get((c.tenant_id, c.metric, c.customer_ref, naive(c.period_start)),
                                                   ("calendar", None, None, target.account))
        row = Row(c.tenant_id, c.customer_ref, c.metric, item, naive(c.period_start), naive(c.period_end), local)
        counter = (c.tenant_id, c.customer_ref, c.metric, naive(c.period_start))
        if src != "stripe":
            compare.no_subscription(row, meter_price.get((target.account, target.event_name)))
        else:
            line = lines.get((item, naive(c.period_start)))
            finalized = line.finalized_at if line is not None else None
            acked = last_ack.get(counter)
            compare.compare(row, prices.get((account, price_id)), line, in_flight=counter in in_flight,
                            acked_after_finalization=bool(finalized and acked and acked >= finalized))
        rows.append(row)
    _write(conn, rows, periods, now, run_id)
    return rows, calls


def _dec(v: Decimal | None) -> Decimal | None:
    return None if v is None else Decimal(v).quantize(_Q)


def _write(conn: duckdb.DuckDBPyConnection, rows: list[Row], periods: list[datetime], now: datetime,
           run_id: str) -> None:
    table = pa.Table.from_pylist([{
        "tenant_id": r.tenant_id, "customer_ref": r.customer_ref, "metric": r.metric,
        "subscription_item": r.subscription_item, "period_start": r.period_start, "period_end": r.period_end,
        "local_total": _dec(r.local_total), "local_amount": _dec(r.local_amount),
        "stripe_quantity": _dec(r.stripe_quantity), "stripe_amount": _dec(r.stripe_amount), "currency": r.currency,
        "invoice": r.invoice, "invoice_status": r.invoice_status, "money_at_stake": _dec(r.money_at_stake),
        "status": r.status, "cause": r.cause, "checked_at": now, "run_id": run_id,
    } for r in rows], schema=_ROW_SCHEMA)
    conn.register("new_invoice_rows", table)
    try:
        with transaction(conn):
            run_script(conn, "invoices/replace.sql", periods=periods)
    finally:
        conn.unregister("new_invoice_rows")
