"""Push planning in the steady state: a daily pre-invoice push over N counters
(default 500k) of which 1 % changed since the last acknowledged push.

The warehouse is written by SQL (period_usage and stripe_push_state in step,
a third of the counters unmapped), then `run_push` plans it as a dry run (no
Stripe call: the figure is our own cost, the intents of the changed counters
are written as `planned`), once with today's code and once with the code of
`--baseline` (a git revision; 6b35ca2 planned each counter in Python, b33b5e5
did so without first leaving out the counters in step), each in its own
subprocess on its own copy, in the same run. The planned intents of both are
compared. `--changed 1` is a first push: every counter changed.

Run: python bench/push_steady.py [--counters 500000] [--changed 0.01] [--baseline 6b35ca2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import common

SCRIPT = Path(__file__).resolve()
NOW = "2025-03-20T12:00:00Z"
CONFIG = {
    "metrics": {"api_calls": {"aggregation": "sum"}, "seats": {"aggregation": "last"}},
    "stripe": {"meters": [{"tenant": "*", "metric": "api_calls", "event_name": "api_calls"},
                          {"tenant": "*", "metric": "seats", "event_name": "seats"}]},
}


def build(db: str, counters: int, changed: float) -> None:
    import duckdb
    sys.path.insert(0, str(common.CODE))
    from stripemeter_assets.warehouse import connect
    with connect(db):
        pass
    conn = duckdb.connect(db)
    every = max(1, round(1 / changed))
    conn.execute(f"""
        CREATE TEMP TABLE c AS
        SELECT i, CASE WHEN i % 3 = 2 THEN 'ext-' ELSE 'cus_' END || lpad(i::VARCHAR, 7, '0') AS ref,
               CASE WHEN i % 2 = 0 THEN 'api_calls' ELSE 'seats' END AS metric,
               (i % 997 + 1)::BIGINT AS acked
        FROM range({counters}) t(i)""")
    conn.execute(f"""
        INSERT INTO period_usage
        SELECT 'acme', metric, ref, TIMESTAMP '2025-03-01', TIMESTAMP '2025-04-01',
               CASE WHEN metric = 'api_calls' THEN 'sum' ELSE 'last' END,
               (acked + CASE WHEN i % {every} = 0 THEN 5 ELSE 0 END)::DECIMAL(38, 9), 1,
               TIMESTAMP '2025-03-19', TIMESTAMP '2025-03-19'
        FROM c""")
    conn.execute("""
        INSERT INTO stripe_push_state
        SELECT 'platform', 'live', 'acme', ref, metric, TIMESTAMP '2025-03-01', ref, metric, acked, 0,
               CASE WHEN metric = 'seats' THEN acked END, CASE WHEN metric = 'seats' THEN 1741900000 END, 1,
               TIMESTAMP '2025-03-19'
        FROM c WHERE ref LIKE 'cus_%'""")
    conn.close()


@common.worker
def plan(db: str) -> dict:
    import logging
    import os
    from datetime import datetime
    os.environ.update({"STRIPEMETER_NOW": NOW, "STRIPE_API_KEY": "sk_live_bench_never_sent"})
    from stripemeter_assets.push.client import GatewayFactory, KeyStatus
    from stripemeter_assets.push.run import PushOptions, run_push
    from stripemeter_assets.settings import now, parse_config
    from stripemeter_assets.warehouse import connect
    log = logging.getLogger("bench.push_steady")
    with connect(db) as conn:
        started, cpu = time.perf_counter(), time.process_time()
        report = run_push(conn, config=parse_config(CONFIG), periods=[datetime(2025, 3, 1)], now=now(),
                          run_id="bench", gateways=GatewayFactory(None), keys=KeyStatus.from_env(),
                          options=PushOptions(dry_run=True, pacing=False), log=log)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        intents = conn.execute("SELECT count(*), sum(value) FROM stripe_pushes WHERE status = 'planned'").fetchone()
    return {"seconds": seconds, "cpu": cpu_s, "planned": intents[0], "value": str(intents[1]),
            "unmapped": report.metadata()["unmapped_counters"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=500_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--baseline", default="6b35ca2")
    args = parser.parse_args()
    with common.bench_dir("push-steady") as tmp, common.code_at(args.baseline) as old:
        base = str(tmp / "base.duckdb")
        build(base, args.counters, args.changed)
        results = {}
        for name, code in (("baseline", old), ("today", None)):
            db = str(tmp / f"{name}.duckdb")
            shutil.copy(base, db)
            results[name] = common.run_worker(SCRIPT, "plan", code=code, db=db)
    b, t = results["baseline"], results["today"]
    print(f"push planning, steady state ({args.counters:,} counters, {args.changed:.0%} changed; {common.load()})")
    print(f"  baseline ({args.baseline}): {b['seconds']:.2f} s wall, {b['cpu']:.2f} s CPU, "
          f"{b['planned']:,} intents planned")
    print(f"  today: {t['seconds']:.2f} s wall, {t['cpu']:.2f} s CPU, {t['planned']:,} intents planned "
          f"({b['seconds'] / t['seconds']:.1f}x faster)")
    print(f"  same intents: {(b['planned'], b['value'], b['unmapped']) == (t['planned'], t['value'], t['unmapped'])}")


if __name__ == "__main__" and not common.maybe_run_worker():
    main()
