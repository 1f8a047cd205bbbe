"""Cost projection of N counters, no Stripe calls: the set-based path against the per-counter
Python path it replaced, on the same scratch warehouse, in the same run (target: at most 3 s
for 500k counters).

The warehouse: N period_usage counters over a few tenants and six metrics (sum, count, max,
last; priced and unpriced; a per-tenant override, an unpriced override, a unit scale), a third of
the customers on Stripe billing periods (their own anchors from mid-February to mid-March, so
some periods are over and some too young to project) with subscription item prices of every
Stripe shape (per unit, transform_quantity, graduated with flat amounts, volume, one the
library cannot read), the others on calendar months; a few values too large for HUGEINT
arithmetic and some negative credits.

Each path runs in its own process on its own copy of the warehouse, timed from the open
connection to the commit (period lookup, projection, write); then both tables are compared
row for row, every column, and the elapsed-fraction metadata.

Run: python bench/projection.py [--counters 500000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import pyarrow as pa  # noqa: E402

import common  # noqa: E402
from common import Row, fmt_count, fmt_s, log, worker  # noqa: E402
from stripemeter_assets.periods.lookup import period_starts  # noqa: E402
from stripemeter_assets.pricing import ScenarioError, parse_price_config, price_line  # noqa: E402
from stripemeter_assets.projection.costs import (  # noqa: E402
    NOTE_NEGATIVE, NOTE_TOO_EARLY, NOTE_TOO_LARGE, NOTE_UNPRICED, USAGE_LIMIT, config_price_book, project_usage,
    round_fraction)
from stripemeter_assets.projection.project import project_periods  # noqa: E402
from stripemeter_assets.settings import naive, parse_config, utc  # noqa: E402
from stripemeter_assets.warehouse import connect, temp_table_from_rows, transaction  # noqa: E402

NOW = datetime(2025, 3, 20, 12)
MARCH, APRIL = datetime(2025, 3, 1), datetime(2025, 4, 1)
TARGET_S = 3.0
METRICS = {"api_calls": "sum", "requests": "count", "storage_gb": "max", "seats": "last", "credits": "sum",
           "events": "sum"}
RAW_CONFIG = {
    "metrics": {**{m: {"aggregation": a} for m, a in METRICS.items()},
                "storage_gb": {"aggregation": "max", "unit_scale": 1000},
                "credits": {"aggregation": "sum", "allow_negative": True}},
    "prices": {
        "api_calls": {"model": "graduated", "currency": "USD", "tiers": [
            {"upTo": 10000, "unitPrice": "0.01"}, {"upTo": 100000, "unitPrice": "0.008", "flatPrice": "5"},
            {"upTo": None, "unitPrice": "0.005", "flatPrice": "20"}]},
        "requests": {"model": "package", "currency": "USD", "unitPrice": "1.5", "packageSize": 1000},
        "storage_gb": {"model": "flat", "currency": "USD", "unitPrice": "0.0125", "minimumCharge": "1"},
        "seats": {"model": "volume", "currency": "EUR", "maximumCharge": "5000", "tiers": [
            {"upTo": 10, "unitPrice": "12"}, {"upTo": 100, "unitPrice": "10", "flatPrice": "15"},
            {"upTo": None, "unitPrice": "8"}]},
    },
    "prices_by_tenant": {
        "tenant_1": {"api_calls": {"model": "volume", "currency": "USD", "tiers": [
            {"upTo": 50000, "unitPrice": "0.009"}, {"upTo": None, "unitPrice": "0.007"}]}},
        "tenant_2": {"seats": None},
    },
}
# Stripe prices of the subscription items (amounts in cents); price_4 has no expanded tiers,
# so the pricing library cannot read it and the config's price applies.
STRIPE_PRICES = {
    "price_0": {"billing_scheme": "per_unit", "currency": "usd", "unit_amount_decimal": "0.25"},
    "price_1": {"billing_scheme": "per_unit", "currency": "usd", "unit_amount": 150,
                "transform_quantity": {"divide_by": 1000, "round": "up"}},
    "price_2": {"billing_scheme": "tiered", "currency": "usd", "tiers_mode": "graduated", "tiers": [
        {"up_to": 1000, "unit_amount": 0, "flat_amount": 500}, {"up_to": 100000, "unit_amount_decimal": "0.5"},
        {"up_to": "inf", "unit_amount_decimal": "0.1"}]},
    "price_3": {"billing_scheme": "tiered", "currency": "usd", "tiers_mode": "volume", "tiers": [
        {"up_to": 500, "unit_amount": 2}, {"up_to": "inf", "unit_amount": 1, "flat_amount": 1000}]},
    "price_4": {"billing_scheme": "tiered", "currency": "usd", "tiers_mode": "graduated"},
}


def build(path: Path, counters: int) -> None:
    """The scratch warehouse: period_usage, billing_periods and billing_prices."""
    metric_list = "[" + ", ".join(f"'{m}'" for m in METRICS) + "]"
    aggregations = "MAP {" + ", ".join(f"'{m}': '{a}'" for m, a in METRICS.items()) + "}"
    with connect(str(path)) as conn:
        conn.execute("SELECT setseed(0.17)")
        conn.execute(f"""
            CREATE TEMP TABLE c AS
            SELECT i, i // 4 AS cust, {metric_list}[((i // 4 + i % 4) % 6) + 1] AS metric,
                   (i // 4) % 3 = 0 AS on_stripe
            FROM range({counters}) r(i)""")
        conn.execute("""
            CREATE TEMP TABLE spans AS
            SELECT i, metric, cust, on_stripe,
                   CASE WHEN on_stripe THEN TIMESTAMP '2025-02-15' + to_days((cust % 33)::INT) + to_hours((cust % 7)::INT)
                        ELSE TIMESTAMP '2025-03-01' END AS period_start
            FROM c""")
        conn.execute(f"""
            INSERT INTO period_usage
            SELECT 'tenant_' || (cust % 5), metric, printf('cus_%07d', cust), period_start,
                   CASE WHEN on_stripe THEN period_start + INTERVAL 1 MONTH ELSE TIMESTAMP '2025-04-01' END,
                   {aggregations}[metric],
                   CASE WHEN i % 99991 = 7 THEN 12345678901234567890123.5::DECIMAL(38, 9)   -- past HUGEINT arithmetic
                        WHEN metric = 'requests' THEN floor(random() * 200000)::DECIMAL(38, 9)
                        WHEN metric = 'seats' THEN floor(random() * 300)::DECIMAL(38, 9)
                        WHEN metric = 'credits' THEN (random() * 2000 - 500)::DECIMAL(38, 3)::DECIMAL(38, 9)
                        ELSE (random() * 400000)::DECIMAL(38, 3)::DECIMAL(38, 9) END,
                   1, TIMESTAMP '2025-03-20', TIMESTAMP '2025-03-20'
            FROM spans""")
        conn.execute("""
            INSERT INTO billing_periods
            SELECT 'tenant_' || (cust % 5), printf('cus_%07d', cust), printf('cus_%07d', cust), 'si_' || i,
                   'price_' || (cust % 5), metric, period_start, period_start + INTERVAL 1 MONTH, 'stripe',
                   'platform', TIMESTAMP '2025-03-20'
            FROM spans WHERE on_stripe AND metric IN ('api_calls', 'storage_gb')""")
        conn.executemany("INSERT INTO billing_prices VALUES ('platform', ?, 'USD', ?, TIMESTAMP '2025-03-20')",
                         [(price, json.dumps(body)) for price, body in STRIPE_PRICES.items()])
        conn.execute("CHECKPOINT")


# ------------------------------------------------------------------ baseline
# The per-counter path as of commit 85b8ae5 (the asset's loop over every period start and
# `projection.costs.project_rows`), kept here only as the baseline.

_OLD_ROWS_SCHEMA = pa.schema([
    ("tenant_id", pa.string()), ("customer_ref", pa.string()), ("metric", pa.string()),
    ("period_start", pa.timestamp("us")), ("period_end", pa.timestamp("us")), ("aggregation", pa.string()),
    ("usage_to_date", pa.decimal128(38, 9)), ("elapsed_fraction", pa.decimal128(7, 6)),
    ("projected_usage", pa.decimal128(38, 9)), ("is_estimate", pa.bool_()), ("priced", pa.bool_()),
    ("currency", pa.string()), ("cost_to_date", pa.decimal128(38, 4)), ("projected_cost", pa.decimal128(38, 4)),
    ("note", pa.string()), ("computed_at", pa.timestamp("us")),
])


def _old_elapsed_fraction(now, start, end) -> Fraction:
    now, start, end = utc(now), utc(start), utc(end)

    def micros(delta):
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds

    total = micros(end - start)
    if total <= 0:
        raise ValueError(f"period end {end} is not after its start {start}")
    return min(Fraction(1), max(Fraction(0), Fraction(micros(now - start), total)))


def _old_project_rows(usage_rows, prices, *, period_start, period_end, now, item_prices=None):
    fraction = _old_elapsed_fraction(now, period_start, period_end)
    shown = round_fraction(fraction, 6)
    rows = []
    for usage in usage_rows:
        to_date = Decimal(usage["value"])
        projected = project_usage(usage["aggregation"], to_date, fraction)
        item = (item_prices or {}).get((usage["tenant_id"], usage["customer_ref"], usage["metric"]))
        config = item[0] if item else prices.price(usage["tenant_id"], usage["metric"])

        def units(quantity, scale=item[1] if item else None):
            return quantity if scale is None else (quantity * scale).to_integral_value(rounding=ROUND_FLOOR)

        notes = []
        if projected is None:
            notes.append(NOTE_TOO_EARLY)
        elif abs(projected) >= USAGE_LIMIT:
            projected = None
            notes.append(NOTE_TOO_LARGE)
        cost_to_date = projected_cost = None
        if config is None:
            notes.append(NOTE_UNPRICED)
        elif to_date < 0 or (projected is not None and projected < 0):
            notes.append(NOTE_NEGATIVE)
        else:
            cost_to_date = price_line(config, units(to_date))
            projected_cost = price_line(config, units(projected)) if projected is not None else None
        rows.append({
            "tenant_id": usage["tenant_id"], "customer_ref": usage["customer_ref"], "metric": usage["metric"],
            "period_start": naive(period_start), "period_end": naive(period_end),
            "aggregation": usage["aggregation"], "usage_to_date": to_date, "elapsed_fraction": shown,
            "projected_usage": projected, "is_estimate": projected is not None and fraction < 1,
            "priced": config is not None, "currency": config.currency if config is not None else None,
            "cost_to_date": cost_to_date, "projected_cost": projected_cost, "note": "; ".join(notes) or None,
            "computed_at": naive(now),
        })
    return rows


def _old_subscription_prices(conn, config, period_start):
    # periods.lookup.subscription_prices as of 85b8ae5 (the projection was its only user).
    out = {}
    for tenant, customer, metric, body in conn.execute(
            "SELECT b.tenant_id, b.customer_ref, b.metric, any_value(p.body) FROM billing_periods b "
            "JOIN billing_prices p ON p.price = b.price AND p.account = b.account "
            "WHERE b.source = 'stripe' AND b.period_start = ? GROUP BY ALL", [naive(period_start)]).fetchall():
        try:
            out[(tenant, customer, metric)] = (parse_price_config(json.loads(body), "price"),
                                               config.metric(metric).unit_scale)
        except ScenarioError:
            continue
    return out


def old_project(conn, config, prices, periods, now) -> dict[str, str]:
    elapsed = {}
    for period in periods:
        cur = conn.execute("SELECT tenant_id, customer_ref, metric, aggregation, value, period_end FROM period_usage "
                           "WHERE period_start = ? ORDER BY tenant_id, customer_ref, metric", [period])
        cols = [d[0] for d in cur.description]
        usage = [dict(zip(cols, r)) for r in cur.fetchall()]
        item_prices = _old_subscription_prices(conn, config, period)
        rows = []
        for end in sorted({u["period_end"] for u in usage}):
            rows += _old_project_rows([u for u in usage if u["period_end"] == end], prices,
                                      period_start=period, period_end=end, now=now, item_prices=item_prices)
        temp_table_from_rows(conn, "new_projection", rows, _OLD_ROWS_SCHEMA)
        conn.execute("DELETE FROM cost_projection WHERE period_start = ?", [period])
        conn.execute("INSERT INTO cost_projection BY NAME SELECT * FROM new_projection WHERE period_start = ?", [period])
        if rows:
            elapsed[f"{period:%Y-%m-%d %H:%M:%S}"] = str(rows[0]["elapsed_fraction"])
    return elapsed


# ------------------------------------------------------------------ workers

@worker
def project(path: str, variant: str) -> dict:
    config = parse_config(RAW_CONFIG)
    prices = config_price_book(config)
    run = old_project if variant == "old" else project_periods
    with connect(path) as conn:
        # DuckDB imports pandas the first time a process hands it an Arrow table (~0.8 s, once
        # per process, for both paths): not part of either projection.
        conn.register("warm_up", pa.table({"x": [1]}))
        conn.unregister("warm_up")
        start = common.now()
        periods = period_starts(conn, MARCH, APRIL)
        with transaction(conn):
            elapsed = run(conn, config, prices, periods, NOW)
        took = common.now() - start
        rows = conn.execute("SELECT count(*) FROM cost_projection").fetchone()[0]
    return {"seconds": took, "rows": rows, "periods": len(periods), "elapsed": elapsed}


def compare(old: Path, new: Path) -> tuple[int, int, int]:
    """(rows, rows only in the old table, rows only in the new one)."""
    with connect(str(old)) as conn:
        conn.execute(f"ATTACH '{new}' AS new (READ_ONLY)")
        rows = conn.execute("SELECT count(*) FROM cost_projection").fetchone()[0]
        only_old = conn.execute("SELECT count(*) FROM (SELECT * FROM cost_projection "
                                "EXCEPT ALL SELECT * FROM new.cost_projection)").fetchone()[0]
        only_new = conn.execute("SELECT count(*) FROM (SELECT * FROM new.cost_projection "
                                "EXCEPT ALL SELECT * FROM cost_projection)").fetchone()[0]
    return rows, only_old, only_new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counters", type=int, default=500_000, help="counters (default 500,000)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per path (default 2; best is reported)")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON (used by run_all.py)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder under data/bench/")
    args = parser.parse_args()
    n = args.counters
    with common.bench_dir("projection", keep=args.keep) as tmp:
        base = tmp / "base.duckdb"
        log(f"building a warehouse of {n:,} counters, {common.load()}")
        build(base, n)
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for i in range(args.repeat):
            for variant in ("old", "new"):  # interleaved: both see the same machine load
                path = tmp / f"{variant}-{i}.duckdb"
                shutil.copy(base, path)
                runs[variant].append(common.run_worker(__file__, "project", path=str(path), variant=variant))
                log(f"{variant} run {i + 1}: {fmt_s(runs[variant][-1]['seconds'])}")
        rows, only_old, only_new = compare(tmp / "old-0.duckdb", tmp / "new-0.duckdb")
        same_meta = runs["old"][0]["elapsed"] == runs["new"][0]["elapsed"]
    old_s = min(r["seconds"] for r in runs["old"])
    new_s = min(r["seconds"] for r in runs["new"])
    identical = only_old == 0 and only_new == 0 and rows == runs["new"][0]["rows"] and same_meta
    table = [
        Row(f"cost projection, {fmt_count(n)} counters, {runs['new'][0]['periods']} period starts: "
            f"per-counter Python (before)", f"{old_s:.2f} s ({old_s / n * 1e6:.1f} µs/counter)"),
        Row(f"cost projection, {fmt_count(n)} counters: set-based (now)",
            f"{new_s:.2f} s ({new_s / n * 1e6:.1f} µs/counter)", f"at most {TARGET_S:g} s at 500k",
            # The target is set at 500k counters; a smaller run (run_all --quick) only reports.
            new_s <= TARGET_S if n >= 500_000 else None),
        Row("speed-up (before / now)", f"{old_s / new_s:.1f}x"),
        Row("rows identical (every column, both ways; metadata fractions)",
            f"{'yes' if identical else 'NO'}: {rows:,} rows, {only_old} only before, {only_new} only now",
            "identical", identical),
    ]
    common.print_table(table, f"bench/projection.py ({common.load()})")
    common.write_json(args.json, table)
    if not identical:
        sys.exit(1)


if __name__ == "__main__":
    if not common.maybe_run_worker():
        main()
