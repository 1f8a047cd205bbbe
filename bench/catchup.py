"""`stripemeter catch-up` end to end against the pandas script a user would write.

N events (default 2M) over about 60k counters (5 tenants x 3 metrics x 4,001
customers, one month) as one JSONL file in a fresh data folder, the bundled
sample config, no Stripe key: the real CLI runs every job the sensors ask
for — ingest, daily and period counters, billing periods, the pre-invoice job
(push planning, meter and invoice reconciliation), cost projection — and
publishes the analyst snapshot, each a Dagster run on a SQLite instance.
Against it, in the same run: bench/baseline_pandas.py's pyarrow-engine
script on the same file (read, parse, dedupe, daily and monthly group-by, in
memory). Target: catch-up within 2x of the pandas script.

Run: python bench/catchup.py [--events 2000000] [--customers 4001] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import common
from common import log

BENCH = Path(__file__).resolve().parent
TARGET_RATIO = 2.0


def catch_up(tmp: Path, landing_file: Path) -> dict:
    data = tmp / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "config").mkdir(parents=True)
    (data / "landing").mkdir()
    shutil.copy(common.ROOT / "data" / "config" / "stripemeter.yaml", data / "config" / "stripemeter.yaml")
    os.link(landing_file, data / "landing" / landing_file.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "STRIPEMETER_", "DAGSTER_"))}
    env.update(STRIPEMETER_DATA=str(data), DAGSTER_HOME=str(data / "dagster_home"),
               STRIPEMETER_NOW="2025-02-01T00:00:00Z", STRIPEMETER_PARTITIONS_START="2025-01-01",
               STRIPEMETER_MEMORY_LIMIT=common.MEMORY_LIMIT)
    started = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "stripemeter"), "catch-up"], env=env, cwd=tmp,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"catch-up failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"wall_s": wall, "runs": [line for line in proc.stdout.splitlines() if line.startswith(("ok", "FAILED"))],
            "phases": _run_times(data / "dagster_home"), "db": str(data / "warehouse.duckdb")}


def _run_times(home: Path) -> dict[str, float]:
    """Seconds per job and per step (asset) in it, summed over the runs, from the instance's stats."""
    import dagster as dg
    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        out: dict[str, float] = {}
        for run in instance.get_runs():
            stats = instance.get_run_stats(run.run_id)
            if stats.start_time and stats.end_time:
                out[run.job_name] = out.get(run.job_name, 0.0) + stats.end_time - stats.start_time
            for step in instance.get_run_step_stats(run.run_id):
                if step.start_time and step.end_time:
                    key = f"{run.job_name} / {step.step_key}"
                    out[key] = out.get(key, 0.0) + step.end_time - step.start_time
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--customers", type=int, default=4001)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(common.CODE))
    import duckdb

    from stripemeter_assets.cli.gen_events import write_bulk_jsonl
    log(f"catch-up bench: {args.events:,} events, {args.customers:,} customers, {common.load()}")
    with common.bench_dir("catchup", keep=args.keep) as tmp:
        path = tmp / "events.jsonl"
        write_bulk_jsonl(path, args.events, start="2025-01-01", days=31, customers=args.customers, seed=0)
        pandas = [common.run_worker(BENCH / "baseline_pandas.py", "pandas_way", path=str(path), engine="pyarrow")
                  for _ in range(args.repeat)]
        ours = [catch_up(tmp, path) for _ in range(args.repeat)]
        best = min(ours, key=lambda r: r["wall_s"])
        conn = duckdb.connect(best["db"], read_only=True)
        counters, events = conn.execute("SELECT count(*), sum(event_count) FROM period_usage").fetchone()
        reconciled = conn.execute("SELECT count(*) FROM reconciliation").fetchone()[0]
        conn.close()
    p_best = min(pandas, key=lambda r: r["total_s"])
    ratio = best["wall_s"] / p_best["total_s"]
    print(f"catch-up bench ({common.load()})")
    print(f"events, counters (period), reconciliation rows   {events:,}, {counters:,}, {reconciled:,}")
    print(f"pandas + pyarrow script (same file, in memory)   {p_best['total_s']:.2f} s")
    print(f"stripemeter catch-up, end to end (CLI)           {best['wall_s']:.2f} s "
          f"({ratio:.2f}x the pandas script; target <= {TARGET_RATIO:.1f}x)")
    for job, seconds in sorted(best["phases"].items()):
        print(f"  {job:<60} {seconds:.2f} s")
    print(f"  runs: {len(best['runs'])}")


if __name__ == "__main__":
    main()
