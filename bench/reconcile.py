"""Reconciliation: time and Stripe calls for N customers x 3 meters.

Against the project's Stripe emulator (real HTTP, real stripe SDK), with a
scratch DuckDB warehouse: the counters are pushed once (pacing off), then
the period is reconciled (pacing off, so the figure is our own cost), and
the number of Stripe calls is translated into what it means under Stripe's
documented live limit for non-meter-event calls (100 ops/s, paced at 80 %).

Run: python bench/reconcile.py [--customers 10000]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stripemeter_assets import settings  # noqa: E402
from stripemeter_assets.push.client import GatewayFactory, KeyStatus  # noqa: E402
from stripemeter_assets.push.pacing import LIVE_GENERAL_RPS, Pacer, RetryPolicy  # noqa: E402
from stripemeter_assets.push.run import PushOptions, run_push  # noqa: E402
from stripemeter_assets.reconcile.run import ReconcileOptions, reconcile_period  # noqa: E402
from stripemeter_assets.reconcile.stripe_totals import StripeTotals  # noqa: E402
from stripemeter_assets.settings import parse_config  # noqa: E402
from stripemeter_assets.stripe_emulator import EmulatorServer  # noqa: E402
from stripemeter_assets.warehouse import connect  # noqa: E402

NOW = "2025-03-20T12:00:00Z"
MARCH, APRIL = datetime(2025, 3, 1), datetime(2025, 4, 1)
METERS = {"api_calls": "sum", "storage_gb": "max", "seats": "last"}
CONFIG = parse_config({
    "metrics": {m: {"aggregation": a} for m, a in METERS.items()},
    "stripe": {"meters": [{"tenant": "*", "metric": m, "event_name": m} for m in METERS]},
})


def run(customers: int) -> list[tuple[str, str]]:
    log = logging.getLogger("bench.reconcile")
    log.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="stripemeter-bench-") as tmp, EmulatorServer(now=NOW) as emu:
        os.environ.update({"STRIPEMETER_NOW": NOW, "STRIPE_API_BASE": emu.url, "STRIPE_API_KEY": "sk_test_bench"})
        os.environ.pop("STRIPE_TEST_API_KEY", None)
        emu.set_rate_limit(stripe_limits=False)   # pacing is off: our own cost (bench/push.py measures the limits)
        emu.set_summary_lag(0)
        for metric, aggregation in METERS.items():
            emu.create_meter(metric, formula="sum" if aggregation == "sum" else "last")
        refs = [f"cus_{i:06d}" for i in range(customers)]
        for ref in refs:
            emu.create_customer(ref)
        warehouse = str(Path(tmp) / "warehouse.duckdb")
        now = settings.now()
        keys = KeyStatus.from_env()
        gateways = GatewayFactory(emu.url)
        push_options = PushOptions(pacing=False, workers=4, retry=RetryPolicy(max_attempts=6, base_seconds=0.05))
        with connect(warehouse) as conn:
            conn.executemany(
                "INSERT INTO period_usage VALUES ('acme', ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                [[m, ref, MARCH, APRIL, a, Decimal(i % 500 + 1), MARCH, MARCH]
                 for i, ref in enumerate(refs) for m, a in METERS.items()])
            started = time.perf_counter()
            pushed = run_push(conn, config=CONFIG, periods=[MARCH], now=now, run_id="push", gateways=gateways,
                              keys=keys, options=push_options, log=log)
            push_s = time.perf_counter() - started
            totals = StripeTotals(emu.url, pacer=Pacer(enabled=False))
            started = time.perf_counter()
            result = reconcile_period(conn, config=CONFIG, period=MARCH, now=now, run_id="rec", keys=keys,
                                      totals=totals, gateways=gateways, push_options=push_options,
                                      options=ReconcileOptions(settle=timedelta(0)),
                                      log=log)
            reconcile_s = time.perf_counter() - started
    counters = customers * len(METERS)
    calls = result.stripe_calls
    paced_rps = LIVE_GENERAL_RPS * 0.8
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
    return [
        (f"counters ({customers:,} customers x {len(METERS)} meters)", f"{counters:,}"),
        ("push of all counters, pacing off", f"{push_s:.1f} s ({pushed.metadata()['stripe_calls']:,} calls)"),
        ("reconciliation, pacing off", f"{reconcile_s:.1f} s ({counters / reconcile_s:,.0f} counters/s)"),
        ("Stripe calls made by the reconciliation", f"{calls:,} ({calls / counters:.2f} per counter)"),
        ("statuses", counts),
        (f"same calls under the live limit (100 ops/s, paced to {paced_rps:.0f}/s)",
         f"{calls / paced_rps / 60:.1f} min"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    args = parser.parse_args()
    rows = run(args.customers)
    width = max(len(k) for k, _ in rows)
    print(f"reconciliation bench ({args.customers:,} customers)")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
