"""Reconciliation: our own cost per counter, and Stripe calls for N customers x 3 meters.

1. Set-based (target: 500k counters in <= 3 s, no Stripe calls): a scratch
   warehouse with `--counters` counters (a third unmapped customer refs, a
   third mapped meters with no Stripe key to read them, a third unmapped
   meters; a few vanished pushed counters) reconciled by today's code and by
   the per-counter code of `--baseline` (a git revision) in the same run, each
   in its own subprocess; the stored rows are compared, and the time to write
   the CSV and bounded HTML reports is shown next to it.
2. Against the project's Stripe emulator (real HTTP, real stripe SDK): the
   counters are pushed once (pacing off), then the period is reconciled
   (pacing off, so the figure is our own cost), and the number of Stripe calls
   is translated into what it means under Stripe's documented live limit for
   non-meter-event calls (100 ops/s, paced at 80 %).

Run: python bench/reconcile.py [--customers 10000] [--counters 500000] [--baseline 85b8ae5]
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

import common  # noqa: E402

sys.path.insert(0, str(common.CODE))

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


# ---------------------------------------------------------------- set-based (no Stripe calls)

SET_CONFIG = {
    "metrics": {"api_calls": {"aggregation": "sum"}, "seats": {"aggregation": "last"},
                "storage_gb": {"aggregation": "max"}},
    "stripe": {"meters": [{"tenant": "*", "metric": "api_calls", "event_name": "api_calls"},
                          {"tenant": "*", "metric": "seats", "event_name": "seats"}]},
}
COMPARED = ("tenant_id, customer_ref, metric, period_start, period_end, stripe_customer, event_name, account, mode, "
            "meter_formula, unit_scale, local_value, local_total, pushed_total, stripe_total, drift, relative_drift, "
            "status, cause")


def build_counters(db: str, counters: int) -> None:
    """period_usage for March: customers "cus_…" (mapped) and "ext-…" (unmapped) over three metrics."""
    import duckdb
    from stripemeter_assets.warehouse import connect
    with connect(db):
        pass
    conn = duckdb.connect(db)
    customers = counters // 3
    conn.execute("""
        INSERT INTO period_usage
        SELECT 'acme', m.metric, CASE WHEN i % 2 = 0 THEN 'cus_' ELSE 'ext-' END || lpad(i::VARCHAR, 7, '0'),
               TIMESTAMP '2025-03-01', TIMESTAMP '2025-04-01', m.agg, (i % 997 + 1)::DECIMAL(38, 9) / 8, 3,
               TIMESTAMP '2025-03-19', TIMESTAMP '2025-03-19'
        FROM range(?) t(i), (VALUES ('api_calls', 'sum'), ('seats', 'last'), ('storage_gb', 'max')) m(metric, agg)
        """, [customers])
    conn.execute("""
        INSERT INTO stripe_push_state
        SELECT 'platform', 'live', 'acme', 'cus_gone' || i, 'api_calls', TIMESTAMP '2025-03-01', 'cus_gone' || i,
               'api_calls', 7, 0, NULL, NULL, 1, TIMESTAMP '2025-03-10' FROM range(5) t(i)""")
    conn.close()


@common.worker
def reconcile_counters(db: str, reports: str) -> dict:
    import inspect
    from stripemeter_assets.push.client import GatewayFactory, KeyStatus
    from stripemeter_assets.push.pacing import Pacer
    from stripemeter_assets.push.run import PushOptions
    from stripemeter_assets.reconcile import report
    from stripemeter_assets.reconcile.run import ReconcileOptions, reconcile_period
    from stripemeter_assets.reconcile.stripe_totals import StripeTotals
    from stripemeter_assets.settings import parse_config
    from stripemeter_assets.warehouse import connect
    log = logging.getLogger("bench.reconcile")
    now = datetime(2025, 3, 20, 12)
    with connect(db) as conn:
        started = time.perf_counter()
        result = reconcile_period(conn, config=parse_config(SET_CONFIG), period=MARCH, now=now, run_id="bench",
                                  keys=KeyStatus.from_env(), totals=StripeTotals(None, pacer=Pacer(enabled=False)),
                                  gateways=GatewayFactory(None), push_options=PushOptions(pacing=False),
                                  options=ReconcileOptions(settle=timedelta(0)), log=log)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        out = Path(reports)
        if "rows" in inspect.signature(report.write_csv).parameters:  # the per-counter baseline
            report.write_csv(result.rows, out / "r.csv")
            report.write_html(result.rows, out / "r.html", period_start=MARCH, epsilon=Decimal("0.005"),
                              checked_at=now)
        else:
            report.write_csv(conn, MARCH, out / "r.csv")
            report.write_html(conn, out / "r.html", period_start=MARCH, epsilon=Decimal("0.005"), checked_at=now,
                              csv_name="r.csv")
        report_s = time.perf_counter() - started
    return {"seconds": seconds, "report_s": report_s, "counts": dict(result.counts),
            "html_mb": (out / "r.html").stat().st_size / 1e6}


def run_set_based(counters: int, baseline: str) -> list[tuple[str, str]]:
    import shutil

    import duckdb
    os.environ.update({"STRIPEMETER_NOW": "2025-03-20T12:00:00Z"})
    for key in ("STRIPE_API_KEY", "STRIPE_TEST_API_KEY", "STRIPE_SECRET_KEY", "STRIPE_TEST_SECRET_KEY"):
        os.environ.pop(key, None)
    with common.bench_dir("reconcile") as tmp, common.code_at(baseline) as old_code:
        base = str(tmp / "base.duckdb")
        build_counters(base, counters)
        results = {}
        for name, code in (("baseline", old_code), ("set-based", None)):
            db, reports = str(tmp / f"{name}.duckdb"), tmp / f"{name}-reports"
            shutil.copy(base, db)
            reports.mkdir()
            results[name] = common.run_worker(Path(__file__), "reconcile_counters", code=code, db=db,
                                              reports=str(reports))
        conn = duckdb.connect(str(tmp / "set-based.duckdb"))
        conn.execute(f"ATTACH '{tmp / 'baseline.duckdb'}' AS old (READ_ONLY)")
        differ = conn.execute(f"SELECT count(*) FROM ((SELECT {COMPARED} FROM reconciliation EXCEPT ALL "
                              f"SELECT {COMPARED} FROM old.reconciliation) UNION ALL (SELECT {COMPARED} FROM "
                              f"old.reconciliation EXCEPT ALL SELECT {COMPARED} FROM reconciliation))").fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM reconciliation").fetchone()[0]
        conn.close()
    old, new = results["baseline"], results["set-based"]
    counts = ", ".join(f"{k}={v}" for k, v in sorted(new["counts"].items()) if v)
    return [
        (f"set-based: counters reconciled, no Stripe calls ({common.load()})", f"{stored:,} ({counts})"),
        (f"  reconcile_period, per-counter baseline ({baseline})", f"{old['seconds']:.2f} s"),
        ("  reconcile_period, set-based (target <= 3 s)", f"{new['seconds']:.2f} s "
                                                           f"({old['seconds'] / new['seconds']:.1f}x faster)"),
        ("  CSV + HTML reports, baseline / set-based", f"{old['report_s']:.2f} s ({old['html_mb']:.1f} MB HTML) / "
                                                      f"{new['report_s']:.2f} s ({new['html_mb']:.2f} MB HTML)"),
        ("  rows differing from the baseline's", f"{differ:,}"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--counters", type=int, default=500_000)
    parser.add_argument("--baseline", default="85b8ae5", help="git revision of the per-counter reconciliation")
    parser.add_argument("--skip-emulator", action="store_true")
    args = parser.parse_args()
    rows = run_set_based(args.counters, args.baseline)
    if not args.skip_emulator:
        rows += run(args.customers)
    width = max(len(k) for k, _ in rows)
    print(f"reconciliation bench ({args.counters:,} counters set-based; {args.customers:,} customers on the emulator)")
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__" and not common.maybe_run_worker():
    main()
