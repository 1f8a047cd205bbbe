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
from stripemeter_assets.periods.lookup import period_starts
from stripemeter_assets.periods.stripe_read import InvoiceLine
from stripemeter_assets.push.client import KeyStatus, key_mode, read_key
from stripemeter_assets.push.mapping import PLATFORM
from stripemeter_assets.reconcile import frame
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import query, run_script, transaction

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
                       now: datetime, run_id: str, reader_for: ReaderFactory) -> tuple[int, list[str]]:
    """Rows for every mapped counter of the periods overlapping [start, end); replaces them in
    `invoice_reconciliation` (this run's rows carry `run_id`). Returns the number of Stripe calls
    and the counters left out as too large (`frame.too_large`).

    The counters come from the meter reconciliation's frame (`reconcile.frame`: the same local
    totals, in SQL); only those with an invoice line or a price to compare become Python rows."""
    now = naive(now)
    keys = KeyStatus.from_env()
    periods = period_starts(conn, start, end)
    run_script(conn, "invoices/counters_table.sql")
    too_large = []
    for period in periods:
        frame.build(conn, config, keys, period, now)
        run_script(conn, "invoices/counters.sql")
        too_large += frame.too_large(conn)
    prices = {(a, p): json.loads(body) for a, p, body in conn.execute(
        "SELECT account, price, body FROM billing_prices").fetchall()}

    # What each account's Stripe says: invoice lines, and previews of the open periods.
    wanted: dict[tuple[bool, str], set[str]] = defaultdict(set)
    for shadow, account, event_name in conn.execute(
            "SELECT DISTINCT shadow, account, event_name FROM invoice_counters").fetchall():
        wanted[(shadow, account)].add(event_name)
    lines: dict[tuple[str, datetime], InvoiceLine] = {}
    meter_price: dict[tuple[str, str], dict[str, Any]] = {}
    unread: set[tuple[bool, str]] = set()
    calls = 0
    since = min(periods, default=now) - timedelta(days=1)
    for (shadow, account), event_names in sorted(wanted.items()):
        key = read_key(shadow)
        if key is None:
            unread.add((shadow, account))
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

    conn.register("meter_prices", pa.table({"account": [a for a, _ in meter_price],
                                            "event_name": [e for _, e in meter_price]},
                                           schema=pa.schema([("account", pa.string()), ("event_name", pa.string())])))
    conn.register("unread_accounts", pa.table(
        {"shadow": [s for s, _ in unread], "account": [a for _, a in unread],
         "cause": [compare.not_read_cause(s) for s, _ in unread]},
        schema=pa.schema([("shadow", pa.bool_()), ("account", pa.string()), ("cause", pa.string())])))
    try:
        rows = []
        for c in query(conn, "invoices/rows.sql"):
            row = Row(c["tenant_id"], c["customer_ref"], c["metric"], c["subscription_item"], c["period_start"],
                      c["period_end"], Decimal(c["local_total"]))
            if (c["shadow"], c["account"]) in unread:
                compare.not_read(row, c["shadow"])
            elif c["source"] != "stripe":
                compare.no_subscription(row, meter_price.get((c["account"], c["event_name"])))
            else:
                line = lines.get((c["subscription_item"], c["period_start"]))
                finalized = line.finalized_at if line is not None else None
                acked = c["last_acked_at"]
                compare.compare(row, prices.get((c["price_account"], c["price"])), line, in_flight=c["pending"],
                                acked_after_finalization=bool(finalized and acked and acked >= finalized))
            rows.append(row)
        _write(conn, rows, periods, now, run_id)
    finally:
        conn.unregister("meter_prices")
        conn.unregister("unread_accounts")
    return calls, too_large


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
            run_script(conn, "invoices/replace.sql", periods=periods, no_price_cause=compare.NO_PRICE_CAUSE, now=now,
                       run_id=run_id)
    finally:
        conn.unregister("new_invoice_rows")
