"""`billing_periods` from Stripe, and the calendar-month fallback.

Per (tenant, metric) mapped to a Stripe meter, the account it bills on is read once (one
reader per key and account); its subscription items on the meter's prices give the
customers' periods. Customer refs are the config's refs of each Stripe customer (a
`cus_…` id is its own ref when no ref names it).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import duckdb
import stripe

from stripemeter_assets.push.client import key_mode, read_key
from stripemeter_assets.push.mapping import PLATFORM
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import run_script

from .stripe_read import AccountBilling

# How far back invoices are read for the periods already invoiced: Stripe takes
# meter events up to 35 days old, so older periods can change nothing on Stripe.
INVOICE_LOOKBACK = timedelta(days=70)


class ReaderFactory(Protocol):
    def __call__(self, api_key: str, mode: str, account: str | None) -> Any: ...


@dataclass(frozen=True)
class Route:
    """Where a (tenant, metric) is billed."""

    tenant: str
    metric: str
    account: str       # acct_… or PLATFORM
    shadow: bool
    event_name: str


@dataclass
class ReadReport:
    accounts_read: int = 0
    stripe_calls: int = 0
    stripe_periods: int = 0
    calendar_rows: int = 0
    unread: list[str] = field(default_factory=list)   # accounts without a key: calendar months
    failed: list[str] = field(default_factory=list)   # accounts Stripe did not answer for
    billing: dict[tuple[bool, str], AccountBilling] = field(default_factory=dict)


def routes(conn: duckdb.DuckDBPyConnection, config: Config) -> list[Route]:
    """Every (tenant, metric) mapped to a meter; a "*" mapping covers the ledger's tenants."""
    mapping = config.stripe
    tenants = {t for (t,) in conn.execute("SELECT DISTINCT tenant_id FROM events").fetchall()}
    tenants |= {m.tenant for m in mapping.meters if m.tenant != "*"}
    out = []
    for tenant in sorted(tenants):
        for metric in sorted({m.metric for m in mapping.meters}):
            meter = mapping.meter_for(tenant, metric)
            if meter is not None:
                out.append(Route(tenant, metric, mapping.account_for(tenant, meter), meter.shadow, meter.event_name))
    return out


def customer_refs(config: Config) -> dict[str, list[str]]:
    """Stripe customer -> the refs naming it in the config."""
    refs: dict[str, list[str]] = defaultdict(list)
    for ref, cus in (config.stripe.customers or {}).items():
        refs[cus].append(ref)
    return refs


def read_stripe(conn: duckdb.DuckDBPyConnection, config: Config, *, now: datetime,
                reader_for: ReaderFactory) -> ReadReport:
    """Reads every account the mapped meters bill on and replaces its Stripe periods."""
    report = ReadReport()
    groups: dict[tuple[bool, str], list[Route]] = defaultdict(list)
    for route in routes(conn, config):
        groups[(route.shadow, route.account)].append(route)
    refs = customer_refs(config)
    rows = []
    for (shadow, account), group in sorted(groups.items()):
        key = read_key(shadow)
        if key is None:
            report.unread.append(f"{account}: no {'test-mode ' if shadow else ''}key configured")
            continue
        reader = reader_for(key, key_mode(key) or "live", None if account == PLATFORM else account)
        try:
            billing = reader.read({r.event_name for r in group}, invoices_since=now - INVOICE_LOOKBACK)
        except stripe.StripeError as exc:  # one unreachable account never stops the others
            report.failed.append(f"{account}: {type(exc).__name__}")
            continue
        finally:
            report.stripe_calls += reader.calls
        report.accounts_read += 1
        report.billing[(shadow, account)] = billing
        event_of_item = {p.subscription_item: p.event_name for p in billing.periods}
        spans = {(p.stripe_customer, p.subscription_item, p.price, p.event_name, p.period_start, p.period_end)
                 for p in billing.periods}
        spans |= {(line.stripe_customer, line.subscription_item, line.price, event_of_item[line.subscription_item],
                   line.period_start, line.period_end) for line in billing.lines}
        for cus, item, price, event_name, start, end in sorted(spans):
            for route in group:
                if route.event_name == event_name:
                    for ref in refs.get(cus) or [cus]:
                        rows.append((route.tenant, ref, cus, item, price, route.metric, start, end, "stripe",
                                     account, now.replace(tzinfo=None)))
        report.stripe_periods += len(spans)
    if rows:
        conn.execute("CREATE OR REPLACE TEMP TABLE read_periods AS SELECT * FROM billing_periods LIMIT 0")
        conn.executemany("INSERT INTO read_periods VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("""DELETE FROM billing_periods b USING read_periods r
                        WHERE b.tenant_id = r.tenant_id AND b.metric = r.metric AND b.customer_ref = r.customer_ref
                          AND b.source = 'stripe' AND b.subscription_item = r.subscription_item
                          AND b.period_start = r.period_start""")
        conn.execute("INSERT INTO billing_periods SELECT DISTINCT * FROM read_periods")
    prices = [(account, pid, str(body["currency"]).upper(), body, now.replace(tzinfo=None))
              for (_, account), billing in report.billing.items() for pid, body in billing.prices.items()]
    if prices:
        conn.executemany("DELETE FROM billing_prices WHERE account = ? AND price = ?", [p[:2] for p in prices])
        conn.executemany("INSERT INTO billing_prices VALUES (?, ?, ?, ?::JSON, ?)",
                         [(a, p, c, _json(b), t) for a, p, c, b, t in prices])
    return report


def ensure_calendar_periods(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, now: datetime) -> int:
    """Calendar months for the counters with usage in the months overlapping [start, end)
    and no Stripe period."""
    before = conn.execute("SELECT count(*) FROM billing_periods WHERE source = 'calendar'").fetchone()[0]
    run_script(conn, "periods/calendar.sql", start=naive(start), end=naive(end), now=naive(now))
    return conn.execute("SELECT count(*) FROM billing_periods WHERE source = 'calendar'").fetchone()[0] - before


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, default=str)  # the SDK decodes *_decimal to Decimal: keep it exact
