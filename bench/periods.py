"""Billing periods at scale.

1. Reading billing periods for N customers (default 10k) from the emulator through the
   real SDK, as the `billing_periods` asset does (`BillingReader.read`: meters, prices,
   subscriptions listed by price, 100 per page, recent invoices), and the time that many
   calls take under Stripe's read limits at 80 % (live 100 ops/s, test mode 25 ops/s),
   next to the per-customer baseline (one subscriptions.list per customer).
2. Recomputing the period counters of January on a ledger of M events (default 10M, the
   counters bench's ledger) with each customer's own period edges (anchors spread over the
   month at 13:42:11: two periods per counter overlap January, four partial edge days),
   next to the same recompute on calendar months, measured in the same run from copies of
   the same database. Target: per-customer edges within 1.5x of calendar months.

Run: python bench/periods.py [--events 10000000] [--customers 10000] [--repeat 2]
"""

from __future__ import annotations

import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import common
from common import Row, fmt_count, fmt_runs, fmt_s, log

SCRIPT = Path(__file__).resolve()
COUNTERS = SCRIPT.parent / "counters.py"
TARGET_RATIO = 1.5
LIVE_RPS, TEST_RPS, FRACTION = 100, 25, 0.8
JANUARY = (datetime(2025, 1, 1), datetime(2025, 2, 1))
CONFIG = {"metrics": {"api_calls": {"aggregation": "sum"}, "storage_gb": {"aggregation": "max"},
                      "seats": {"aggregation": "last"}}}


@common.worker
def read_periods(customers: int) -> dict:
    """N customers subscribed to one metered price; one read as the asset does it."""
    import stripe

    from stripemeter_assets.periods.stripe_read import BillingReader
    from stripemeter_assets.push.pacing import Pacer, RetryPolicy
    from stripemeter_assets.stripe_emulator import EmulatorServer

    key = "sk_test_" + "bench"
    with EmulatorServer(now=int(datetime(2025, 1, 20).timestamp())) as emu:
        client = stripe.StripeClient(key, base_addresses={"api": emu.url}, max_network_retries=0)
        meter = client.v1.billing.meters.create(
            {"display_name": "API", "event_name": "api_calls", "default_aggregation": {"formula": "sum"}})
        product = client.v1.products.create({"name": "API"})
        price = client.v1.prices.create({"currency": "usd", "product": product.id, "unit_amount": 1, "recurring": {
            "interval": "month", "usage_type": "metered", "meter": meter.id}})
        billing = emu.state.billing
        for i in range(customers):  # set up in process: the read is what is measured
            emu.create_customer(f"cus_{i:06d}")
            billing.create_subscription(False, None, {"customer": f"cus_{i:06d}", "items": [{"price": price.id}]})
        emu.clear_requests()
        reader = BillingReader(key, "test", None, api_base=emu.url, pacer=Pacer(enabled=False), retry=RetryPolicy())
        t0 = time.perf_counter()
        seen = reader.read({"api_calls"}, invoices_since=datetime(2024, 12, 1))
        wall = time.perf_counter() - t0
        # The per-customer baseline, timed on a sample of 200 customers.
        t0 = time.perf_counter()
        for i in range(min(200, customers)):
            client.v1.subscriptions.list({"customer": f"cus_{i:06d}", "limit": 100})
        per_customer_call = (time.perf_counter() - t0) / min(200, customers)
    return {"calls": reader.calls, "periods": len(seen.periods), "wall_s": wall,
            "per_customer_call_s": per_customer_call}


@common.worker
def recompute(db: str, mode: str) -> dict:
    """January's period counters, every day recomputed first (as the backfill does)."""
    from _ledger import NOW

    from stripemeter_assets.counters.recompute import recompute_days, recompute_periods
    from stripemeter_assets.settings import parse_config
    from stripemeter_assets.warehouse import connect, transaction

    config = parse_config(CONFIG)
    start, end = JANUARY
    with connect(db, memory_limit=common.MEMORY_LIMIT) as conn:
        if mode == "anchored":
            # Each customer's anchor on its own day of the month at 13:42:11: periods
            # [Dec d, Jan d) and [Jan d, Feb d) overlap January.
            conn.execute("""
                INSERT INTO billing_periods
                SELECT tenant_id, customer_ref, customer_ref, 'si_' || customer_ref, 'price_bench', metric,
                       s + to_months(m::INTEGER), s + to_months((m + 1)::INTEGER), 'stripe', 'platform',
                       now()::TIMESTAMP
                FROM (SELECT DISTINCT tenant_id, metric, customer_ref,
                             TIMESTAMP '2024-12-01 13:42:11' + to_days((hash(customer_ref) % 28)::INTEGER) AS s
                      FROM events),
                     range(2) r(m)""")
        with transaction(conn):
            t0 = time.perf_counter()
            recompute_days(conn, start, end, NOW)
            t1 = time.perf_counter()
            recompute_periods(conn, config, start, end, NOW, "bench")
            t2 = time.perf_counter()
        counters, events = conn.execute("SELECT count(*), sum(event_count) FROM period_usage").fetchone()
    return {"days_s": t1 - t0, "periods_s": t2 - t1, "counters": counters, "events": int(events)}


def main() -> None:
    parser = common.bench_args(__doc__, 10_000_000, **{
        "--customers": {"type": int, "default": 10_000, "help": "customers whose periods are read (default 10k)"},
    })
    args = parser.parse_args()
    n, customers, r = args.events, args.customers, args.repeat
    log(f"periods bench: read {customers:,} customers' periods; recompute on {n:,} events; {common.load()}")

    read = common.run_worker(SCRIPT, "read_periods", customers=customers)
    by_price = {"live": read["calls"] / (FRACTION * LIVE_RPS), "test": read["calls"] / (FRACTION * TEST_RPS)}
    per_customer = {"live": customers / (FRACTION * LIVE_RPS), "test": customers / (FRACTION * TEST_RPS)}
    rows = [
        Row(f"read periods of {fmt_count(customers)} customers: Stripe calls (by price, 100/page)",
            f"{read['calls']:,} calls, {read['periods']:,} periods, {fmt_s(read['wall_s'])} unpaced vs emulator"),
        Row("  same read under 80 % of Stripe's limits (live 100/s | test 25/s)",
            f"{fmt_s(by_price['live'])} | {fmt_s(by_price['test'])}"),
        Row("  baseline: one subscriptions.list per customer, same limits",
            f"{customers:,} calls: {fmt_s(per_customer['live'])} | {fmt_s(per_customer['test'])} "
            f"({read['per_customer_call_s'] * 1000:.1f} ms/call unpaced)"),
    ]

    with common.bench_dir("periods", keep=args.keep) as tmp:
        base = tmp / "ledger.duckdb"
        built = common.run_worker(COUNTERS, "build_sql", db=str(base), events=n)
        log(f"ledger of {n:,} built in {fmt_s(built['seconds'])}")
        work = tmp / "work.duckdb"

        def fresh(_: int) -> None:
            for suffix in ("", ".wal"):
                Path(str(work) + suffix).unlink(missing_ok=True)
                if Path(str(base) + suffix).exists():
                    shutil.copyfile(str(base) + suffix, str(work) + suffix)

        results = {}
        for mode in ("calendar", "anchored", "calendar", "anchored")[: 2 * max(r, 1)]:
            results.setdefault(mode, []).extend(common.repeat_worker(SCRIPT, "recompute", 1, before=fresh,
                                                                     db=str(work), mode=mode))
        cal, anc = results["calendar"], results["anchored"]
        for mode, runs in results.items():
            log(f"{mode}: periods {fmt_runs([x['periods_s'] for x in runs])}, "
                f"days {fmt_runs([x['days_s'] for x in runs])}, {runs[0]['counters']:,} counters")
        if any(x["events"] != n for x in cal + anc):
            raise SystemExit(f"a recompute lost or double-counted events: {cal + anc}")
        best_cal = min(x["periods_s"] for x in cal)
        best_anc = min(x["periods_s"] for x in anc)
        ratio = best_anc / best_cal
        both_cal = min(x["periods_s"] + x["days_s"] for x in cal)
        both_anc = min(x["periods_s"] + x["days_s"] for x in anc)
        rows += [
            Row(f"January's period counters, {fmt_count(n)} events: calendar months (baseline)",
                f"{fmt_runs([x['periods_s'] for x in cal])}, {cal[0]['counters']:,} counters"),
            Row("  per-customer edges (anchors at 13:42:11 over the month)",
                f"{fmt_runs([x['periods_s'] for x in anc])}, {anc[0]['counters']:,} counters"),
            Row("  ratio per-customer / calendar (period recompute)", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x",
                ratio <= TARGET_RATIO),
            Row("  with the 31 days recomputed first (the backfill)",
                f"{fmt_s(both_anc)} vs {fmt_s(both_cal)} ({both_anc / both_cal:.2f}x)"),
        ]
    common.print_table(rows, f"periods bench ({common.load()} at the end)")
    common.write_json(args.json, rows, {"read": read, "calendar": cal, "anchored": anc})


if __name__ == "__main__":
    if not common.maybe_run_worker():
        main()
    sys.exit(0)
