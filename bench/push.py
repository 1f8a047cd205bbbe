"""Stripe push: Stripe calls per changed counter, and push throughput.

Against the project's Stripe emulator (a real HTTP server on 127.0.0.1,
through the real stripe SDK), with a scratch DuckDB warehouse:

1. calls per changed counter: counters fed by 1, 100 and 2,000 ledger events
   each (real ingest + counters code); then a second round where a tenth of
   the counters change. Expected: exactly 1 call per changed counter,
   whatever the event count, and 0 for unchanged counters.
2. throughput: N counters pushed in one run (plan + outbox write + send +
   acknowledgements), pacing off (1 and 4 workers), then paced at the
   test-mode limit (25 req/s, so ≤ 20 req/s) with the emulator enforcing
   that limit: no 429 expected.

Run: python bench/push.py [--counters 2000] [--paced 100]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stripemeter_assets import settings  # noqa: E402
from stripemeter_assets.counters import recompute_days, recompute_periods  # noqa: E402
from stripemeter_assets.ingest import ingest_batch, list_ready_files  # noqa: E402
from stripemeter_assets.push.client import GatewayFactory, KeyStatus  # noqa: E402
from stripemeter_assets.push.pacing import RetryPolicy  # noqa: E402
from stripemeter_assets.push.run import PushOptions, run_push  # noqa: E402
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


def calls_per_counter(tmp: Path) -> list[tuple[str, str]]:
    rows = []
    with EmulatorServer(now=NOW) as emu:
        _env(emu)
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
        rows.append(("first push: calls / changed counters", f"{meta['stripe_calls']} / {total_counters}"))
        # Round 2: a tenth of the counters get one more event each.
        with connect(warehouse) as conn:
            conn.execute("UPDATE period_usage SET value = value + 1 WHERE hash(customer_ref) % 10 = 0")
            changed = conn.execute("SELECT count(*) FROM period_usage WHERE hash(customer_ref) % 10 = 0").fetchone()[0]
        meta, _ = _push(warehouse, pacing=False, workers=4, run_id="r2")
        rows.append(("second push: calls / changed counters", f"{meta['stripe_calls']} / {changed}"))
        meta, _ = _push(warehouse, pacing=False, workers=4, run_id="r3")
        rows.append(("third push (nothing new): calls", str(meta["stripe_calls"])))
    return rows


def throughput(tmp: Path, counters: int, *, pacing: bool, workers: int, limit: int | None) -> tuple[str, str]:
    with EmulatorServer(now=NOW) as emu:
        _env(emu)
        emu.create_meter("api_calls")
        if limit:
            emu.set_rate_limit(test=limit)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=2000)
    parser.add_argument("--paced", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stripemeter-bench-push-") as tmp:
        rows = calls_per_counter(Path(tmp))
        rows.append(throughput(Path(tmp), args.counters, pacing=False, workers=1, limit=None))
        rows.append(throughput(Path(tmp), args.counters, pacing=False, workers=4, limit=None))
        rows.append(throughput(Path(tmp), args.paced, pacing=True, workers=4, limit=25))
    width = max(len(r[0]) for r in rows)
    print(f"{'metric':<{width}} | value")
    print(f"{'-' * width}-|-{'-' * 40}")
    for name, value in rows:
        print(f"{name:<{width}} | {value}")


if __name__ == "__main__":
    main()
