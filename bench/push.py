"""Stripe push: Stripe calls per changed counter, and push throughput.

Against the project's Stripe emulator (a real HTTP server on 127.0.0.1,
through the real stripe SDK), with a scratch DuckDB warehouse:

1. calls per changed counter: counters fed by 1, 100 and 2,000 ledger events
   each (real ingest + counters code); then a second round where a tenth of
   the counters change. Expected: exactly 1 call per changed counter,
   whatever the event count, and 0 for unchanged counters.
2. throughput: N counters pushed in one run (plan + outbox write + checks
   before sending + send + acknowledgements), pacing off and the emulator's
   limits off (1 and 4 workers: our own cost), then paced at the test-mode
   limit (25 req/s, so ≤ 20 req/s) with the emulator enforcing it.
3. under Stripe's real limits, live mode, C customers × 3 meters, on the
   platform and on a connected account, side by side with the same push
   with limits and pacing off (the baseline, measured in the same run):
   first push (meter list + one customer look-up each + 3 meter events each),
   then the reconciliation's summary reads (3 per customer, basic limit).
   The platform's live meter events have their own 1000/s limit; on a
   connected account they count toward its basic 100/s (paced at 80 %).
   Expected: no 429, and time ≈ calls / (0.8 × limit).

Run: python bench/push.py [--counters 2000] [--paced 100] [--customers 10000]
"""

from __future__ import annotations

import argparse
import json
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
from stripemeter_assets.counters.recompute import recompute_days, recompute_periods  # noqa: E402
from stripemeter_assets.ledger import ingest_batch, list_ready_files  # noqa: E402
from stripemeter_assets.push.client import GatewayFactory, KeyStatus  # noqa: E402
from stripemeter_assets.push.pacing import Pacer, RetryPolicy  # noqa: E402
from stripemeter_assets.push.run import PushOptions, run_push  # noqa: E402
from stripemeter_assets.reconcile.run import ReconcileOptions, reconcile_period  # noqa: E402
from stripemeter_assets.reconcile.stripe_totals import StripeTotals  # noqa: E402
from stripemeter_assets.settings import parse_config  # noqa: E402
from stripemeter_assets.stripe_emulator import EmulatorServer  # noqa: E402
from stripemeter_assets.warehouse import connect  # noqa: E402

NOW = "2025-03-20T12:00:00Z"
MARCH, APRIL = datetime(2025, 3, 1), datetime(2025, 4, 1)
CONFIG = parse_config({
    "metrics": {"api_calls": {"aggregation": "sum"}},
    "stripe": {"meters": [{"tenant": "*", "metric": "api_calls", "event_name": "api_calls"}]},
})


def _env(emu: EmulatorServer) -> None:
    os.environ.update({"STRIPEMETER_NOW": NOW, "STRIPE_API_BASE": emu.url, "STRIPE_API_KEY": "sk_test_bench"})
    os.environ.pop("STRIPE_TEST_API_KEY", None)


def _push(warehouse: str, *, pacing: bool, workers: int, run_id: str) -> tuple[dict, float]:
    gateways = GatewayFactory(os.environ["STRIPE_API_BASE"])
    options = PushOptions(pacing=pacing, workers=workers, retry=RetryPolicy(max_attempts=6, base_seconds=0.05))
    started = time.perf_counter()
    with connect(warehouse) as conn:
        report = run_push(conn, config=CONFIG, periods=[MARCH], now=settings.now(), run_id=run_id,
                          gateways=gateways, keys=KeyStatus.from_env(), options=options, log=_Quiet())
    return report.metadata(), time.perf_counter() - started


class _Quiet:
    def info(self, *a, **k):
        pass

    warning = info


def _meter_event_posts(emu: EmulatorServer) -> int:
    return sum(1 for r in emu.requests() if r["path"] == "/v1/billing/meter_events")


def calls_per_counter(tmp: Path) -> list[tuple[str, str]]:
    rows = []
    with EmulatorServer(now=NOW) as emu:
        _env(emu)
        emu.set_rate_limit(stripe_limits=False)
        emu.create_meter("api_calls")
        landing = tmp / "landing"
        landing.mkdir()
        warehouse = str(tmp / "calls.duckdb")
        per_counter = {1: 20, 100: 20, 2000: 20}   # events per counter -> counters
        lines, n = [], 0
        for events, counters in per_counter.items():
            for c in range(counters):
                customer = f"cus_e{events}_{c}"
                emu.create_customer(customer)
                for i in range(events):
                    n += 1
                    lines.append(json.dumps({"tenantId": "acme", "metric": "api_calls", "customerRef": customer,
                                             "quantity": "1", "idempotencyKey": f"k{n}",
                                             "ts": f"2025-03-{1 + i % 18:02d}T{i % 24:02d}:00:00Z"}))
        (landing / "events.jsonl").write_text("\n".join(lines) + "\n")
        now = settings.now()
        with connect(warehouse) as conn:
            ingest_batch(conn, list_ready_files(str(landing), settle=0), batch_id="b1", config=CONFIG, now=now)
            recompute_days(conn, MARCH, APRIL, now)
            recompute_periods(conn, CONFIG, MARCH, APRIL, now, "bench")
        meta, _ = _push(warehouse, pacing=False, workers=4, run_id="r1")
        total_counters = sum(per_counter.values())
        rows.append(("events ingested", f"{n:,}"))
        for events, counters in per_counter.items():
            calls = sum(1 for r in emu.requests() if r["path"] == "/v1/billing/meter_events"
                        and r["params"]["payload"]["stripe_customer_id"].startswith(f"cus_e{events}_"))
            rows.append((f"calls per counter, {events:,} event(s) each", f"{calls / counters:.2f}"))
        rows.append(("first push: meter events / changed counters", f"{_meter_event_posts(emu)} / {total_counters}"))
        # Round 2: a tenth of the counters get one more event each.
        with connect(warehouse) as conn:
            conn.execute("UPDATE period_usage SET value = value + 1 WHERE hash(customer_ref) % 10 = 0")
            changed = conn.execute("SELECT count(*) FROM period_usage WHERE hash(customer_ref) % 10 = 0").fetchone()[0]
        before = _meter_event_posts(emu)
        meta, _ = _push(warehouse, pacing=False, workers=4, run_id="r2")
        rows.append(("second push: meter events / changed counters", f"{_meter_event_posts(emu) - before} / {changed}"))
        before = _meter_event_posts(emu)
        meta, _ = _push(warehouse, pacing=False, workers=4, run_id="r3")
        rows.append(("third push (nothing new): meter events", str(_meter_event_posts(emu) - before)))
    return rows


def throughput(tmp: Path, counters: int, *, pacing: bool, workers: int, limit: int | None) -> tuple[str, str]:
    with EmulatorServer(now=NOW) as emu:
        _env(emu)
        emu.create_meter("api_calls")
        emu.set_rate_limit(stripe_limits=bool(limit), test=limit)
        warehouse = str(tmp / f"tp_{counters}_{pacing}_{workers}.duckdb")
        with connect(warehouse) as conn:
            customers = [f"cus_{i:06d}" for i in range(counters)]
            for c in customers:
                emu.create_customer(c)
            conn.executemany("INSERT INTO period_usage VALUES ('acme', 'api_calls', ?, ?, ?, 'sum', ?, 1, ?, ?)",
                             [[c, MARCH, APRIL, Decimal(i + 1), MARCH, MARCH] for i, c in enumerate(customers)])
        meta, seconds = _push(warehouse, pacing=pacing, workers=workers, run_id="tp")
        got_429 = sum(1 for r in emu.requests() if r["status"] == 429)
        assert meta["intents_acknowledged"] == counters, meta
    label = (f"throughput, {counters:,} counters, "
             + (f"paced (test mode, emulator limit {limit}/s)" if pacing else f"pacing off, {workers} worker(s)"))
    return label, f"{counters / seconds:,.0f} intents/s ({seconds:.2f} s, {meta['stripe_calls']} calls, {got_429} × 429)"


LIVE_METERS = {"api_calls": "sum", "storage_gb": "max", "seats": "last"}
LIVE_CONFIG = parse_config({
    "metrics": {m: {"aggregation": a} for m, a in LIVE_METERS.items()},
    "stripe": {"meters": [{"tenant": "*", "metric": m, "event_name": m} for m in LIVE_METERS],
               "accounts": {"connected": "acct_bench"}},
})


def under_live_limits(tmp: Path, customers: int, *, tenant: str, limits: bool) -> dict[str, float | int]:
    """First push and reconciliation of `customers` × 3 meters in live mode."""
    account = "acct_bench" if tenant == "connected" else None
    with EmulatorServer(now=NOW) as emu:
        os.environ.update({"STRIPEMETER_NOW": NOW, "STRIPE_API_BASE": emu.url, "STRIPE_API_KEY": "sk_live_bench"})
        os.environ.pop("STRIPE_TEST_API_KEY", None)
        emu.set_rate_limit(stripe_limits=limits)
        emu.set_summary_lag(0)
        for metric, aggregation in LIVE_METERS.items():
            emu.create_meter(metric, formula="sum" if aggregation == "sum" else "last", livemode=True, account=account)
        refs = [f"cus_{i:06d}" for i in range(customers)]
        for ref in refs:
            emu.create_customer(ref, livemode=True, account=account)
        warehouse = str(tmp / f"live_{tenant}_{limits}.duckdb")
        with connect(warehouse) as conn:
            conn.executemany("INSERT INTO period_usage VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                             [[tenant, m, ref, MARCH, APRIL, a, Decimal(i % 97 + 1), MARCH, MARCH]
                              for i, ref in enumerate(refs) for m, a in LIVE_METERS.items()])
        options = PushOptions(pacing=limits, workers=4, retry=RetryPolicy(max_attempts=8, base_seconds=0.05))
        started = time.perf_counter()
        with connect(warehouse) as conn:
            report = run_push(conn, config=LIVE_CONFIG, periods=[MARCH], now=settings.now(), run_id="live",
                              gateways=GatewayFactory(emu.url), keys=KeyStatus.from_env(), options=options,
                              log=_Quiet())
        push_s = time.perf_counter() - started
        assert report.acknowledged == 3 * customers, report.metadata()
        push_calls = len(emu.requests())
        totals = StripeTotals(emu.url, pacer=Pacer(limits), retry=options.retry)
        started = time.perf_counter()
        with connect(warehouse) as conn:
            result = reconcile_period(conn, config=LIVE_CONFIG, period=MARCH, now=settings.now(), run_id="rec",
                                      keys=KeyStatus.from_env(), totals=totals, gateways=GatewayFactory(emu.url),
                                      push_options=options, options=ReconcileOptions(settle=timedelta(0),
                                                                                     auto_correct=False),
                                      log=_Quiet())
        reconcile_s = time.perf_counter() - started
        assert result.counts["ok"] == 3 * customers, result.counts
        return {"push_s": push_s, "push_calls": push_calls, "reconcile_s": reconcile_s,
                "reconcile_calls": len(emu.requests()) - push_calls,
                "429": sum(1 for r in emu.requests() if r["status"] == 429)}


def live_limits_table(tmp: Path, customers: int) -> None:
    runs = {(tenant, limits): under_live_limits(tmp, customers, tenant=tenant, limits=limits)
            for tenant in ("platform", "connected") for limits in (False, True)}
    print(f"\nLive mode, {customers:,} customers x 3 meters ({3 * customers:,} counters): first push, then "
          "reconciliation")
    header = ["", "platform, no limits", "platform, Stripe limits", "connected, no limits",
              "connected, Stripe limits"]
    cols = [runs[("platform", False)], runs[("platform", True)], runs[("connected", False)],
            runs[("connected", True)]]
    lines = [
        ("push: seconds", [f"{c['push_s']:.1f}" for c in cols]),
        ("push: Stripe calls", [f"{c['push_calls']:,}" for c in cols]),
        ("push: calls/s", [f"{c['push_calls'] / c['push_s']:,.0f}" for c in cols]),
        ("reconcile: seconds", [f"{c['reconcile_s']:.1f}" for c in cols]),
        ("reconcile: Stripe calls", [f"{c['reconcile_calls']:,}" for c in cols]),
        ("429 answers", [str(c["429"]) for c in cols]),
    ]
    if customers != 10_000:
        scale = 10_000 / customers
        lines.append(("10k customers: push + reconcile, est. min",
                      [f"{(c['push_s'] + c['reconcile_s']) * scale / 60:.1f}" for c in cols]))
    width = max(len(name) for name, _ in lines)
    print(f"{'':<{width}} | " + " | ".join(f"{h:>24}" for h in header[1:]))
    for name, values in lines:
        print(f"{name:<{width}} | " + " | ".join(f"{v:>24}" for v in values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=100)
    parser.add_argument("--customers", type=int, default=10_000, help="live-limits section: customers (x 3 meters)")
    parser.add_argument("--only-live", action="store_true", help="only the live-limits section")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stripemeter-bench-push-") as tmp:
        if not args.only_live:
            rows = calls_per_counter(Path(tmp))
            rows.append(throughput(Path(tmp), args.counters, pacing=False, workers=1, limit=None))
            rows.append(throughput(Path(tmp), args.counters, pacing=False, workers=4, limit=None))
            rows.append(throughput(Path(tmp), args.paced, pacing=True, workers=4, limit=25))
            width = max(len(r[0]) for r in rows)
            print(f"{'metric':<{width}} | value")
            print(f"{'-' * width}-|-{'-' * 40}")
            for name, value in rows:
                print(f"{name:<{width}} | {value}")
        live_limits_table(Path(tmp), args.customers)


if __name__ == "__main__":
    main()
