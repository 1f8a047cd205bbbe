"""What a user would otherwise write with pandas, on the same JSONL file
(default 1M events), against stripemeter's ingest + counters on that file.

pandas: `pd.read_json(lines=True)` (default engine, and engine="pyarrow"), parse `ts`, drop duplicates on
(tenantId, idempotencyKey) for keyed events and on the billable fields for
the others, then daily and monthly `groupby(...).sum()`. In memory only:
floats, no validation, no quarantine, no ledger kept, nothing incremental.

stripemeter: the `usage_events` path into a fresh DuckDB file, then
`recompute_days` over the data's days and `recompute_periods` for its month
(the `daily_usage` / `period_usage` assets' calls), exact decimals.

Both run in their own subprocess, `--repeat` times; the totals are checked
against each other.

Run: python bench/baseline_pandas.py [--events 1000000]
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import common
from common import Row, fmt_count, fmt_mb, fmt_rate, fmt_runs, log

SCRIPT = Path(__file__).resolve()


@common.worker
def pandas_way(path: str, engine: str = "ujson") -> dict:
    import pandas as pd
    phases = {}
    t0 = time.perf_counter()
    with common.timed(phases, "read_json"):
        if engine == "pyarrow":
            df = pd.read_json(path, lines=True, engine="pyarrow")
        else:
            df = pd.read_json(path, lines=True, dtype={"quantity": "float64"})
    with common.timed(phases, "parse ts"):
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
    with common.timed(phases, "dedupe"):
        keyed = df["idempotencyKey"].notna()
        df = pd.concat([
            df[keyed].drop_duplicates(["tenantId", "idempotencyKey"]),
            df[~keyed].drop_duplicates(["tenantId", "metric", "customerRef", "ts", "quantity"]),
        ])
    with common.timed(phases, "daily groupby"):
        df["day"] = df["ts"].dt.floor("D")
        daily = df.groupby(["tenantId", "metric", "customerRef", "day"], as_index=False).agg(
            sum_quantity=("quantity", "sum"), event_count=("quantity", "size"), max_quantity=("quantity", "max"))
    with common.timed(phases, "period groupby"):
        daily["period"] = daily["day"].dt.tz_localize(None).dt.to_period("M")
        period = daily.groupby(["tenantId", "metric", "customerRef", "period"], as_index=False).agg(
            value=("sum_quantity", "sum"), event_count=("event_count", "sum"))
    total = time.perf_counter() - t0
    return {"total_s": total, "phases": phases, "events": int(period["event_count"].sum()),
            "quantity": float(period["value"].sum()), "daily_rows": len(daily), "period_rows": len(period)}


@common.worker
def stripemeter_way(path: str, db: str) -> dict:
    import _ledger

    from stripemeter_assets.counters.recompute import recompute_days, recompute_periods
    from stripemeter_assets.settings import month_starts, next_month
    from stripemeter_assets.settings import Config
    from stripemeter_assets.warehouse import connect, transaction
    t0 = time.perf_counter()
    ingest = _ledger.ingest_folder(db, str(Path(path).parent), batch_id=str(uuid.uuid4()),
                                   memory_limit=common.MEMORY_LIMIT, profile=False)
    t1 = time.perf_counter()
    with connect(db, memory_limit=common.MEMORY_LIMIT) as conn:
        lo, hi = conn.execute("SELECT min(ts)::DATE, max(ts)::DATE FROM events").fetchone()
        from datetime import datetime, timedelta
        start = datetime.combine(lo, datetime.min.time())
        end = datetime.combine(hi, datetime.min.time()) + timedelta(days=1)
        with transaction(conn):
            recompute_days(conn, start, end, _ledger.NOW)
        with transaction(conn):
            for p in month_starts(start, end):
                recompute_periods(conn, Config(), p, next_month(p), _ledger.NOW, "bench")
        events, quantity = conn.execute("SELECT sum(event_count), sum(value) FROM period_usage").fetchone()
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "ingest_s": t1 - t0, "counters_s": t2 - t1, "events": int(events),
            "quantity": float(quantity), "rows_loaded": ingest["rows_loaded"]}


def main() -> None:
    args = common.bench_args(__doc__, 1_000_000).parse_args()
    from _ledger import DAYS, START

    from stripemeter_assets.cli.gen_events import write_bulk_jsonl
    n = args.events
    log(f"pandas baseline: {n:,} events, {common.load()}")
    with common.bench_dir("pandas", keep=args.keep) as tmp:
        land = tmp / "landing"
        land.mkdir()
        path = land / "events.jsonl"
        write_bulk_jsonl(path, n, start=START, days=DAYS, seed=0)
        pd_runs = common.repeat_worker(SCRIPT, "pandas_way", args.repeat, path=str(path))
        pa_runs = common.repeat_worker(SCRIPT, "pandas_way", args.repeat, path=str(path), engine="pyarrow")
        db = tmp / "ledger.duckdb"

        def fresh(_):
            for p in (db, Path(str(db) + ".wal")):
                p.unlink(missing_ok=True)
        sm_runs = common.repeat_worker(SCRIPT, "stripemeter_way", args.repeat, before=fresh, path=str(path), db=str(db))
    p_best = min(pd_runs, key=lambda r: r["total_s"])
    s_best = min(sm_runs, key=lambda r: r["total_s"])
    same = (p_best["events"] == s_best["events"]
            and abs(p_best["quantity"] - s_best["quantity"]) <= 1e-6 * abs(s_best["quantity"]))
    pa_best = min(pa_runs, key=lambda r: r["total_s"])
    same = same and pa_best["events"] == s_best["events"]
    for r in pd_runs + pa_runs:
        log(f"pandas {r['total_s']:.2f} s, peak {fmt_mb(r['peak_rss_mb'])}: "
            + ", ".join(f"{k} {v:.2f}s" for k, v in r["phases"].items()))
    for r in sm_runs:
        log(f"stripemeter {r['total_s']:.2f} s (ingest {r['ingest_s']:.2f} + counters {r['counters_s']:.2f}), "
            f"peak {fmt_mb(r['peak_rss_mb'])}")
    ratio = s_best["total_s"] / p_best["total_s"]
    rows = [
        Row(f"pandas read_json + dedupe + groupby, {fmt_count(n)}",
            f"{fmt_runs([r['total_s'] for r in pd_runs])} = {fmt_rate(n, p_best['total_s'])}; "
            f"peak {fmt_mb(max(r['peak_rss_mb'] for r in pd_runs))}"),
        Row("  of which pd.read_json", f"{p_best['phases']['read_json']:.2f} s"),
        Row(f"pandas, read_json(engine='pyarrow'), {fmt_count(n)}",
            f"{fmt_runs([r['total_s'] for r in pa_runs])} = {fmt_rate(n, pa_best['total_s'])}; "
            f"peak {fmt_mb(max(r['peak_rss_mb'] for r in pa_runs))}"),
        Row(f"stripemeter ingest + counters, {fmt_count(n)}",
            f"{fmt_runs([r['total_s'] for r in sm_runs])} = {fmt_rate(n, s_best['total_s'])}; "
            f"peak {fmt_mb(max(r['peak_rss_mb'] for r in sm_runs))}"),
        Row("  of which counters (days + period)", f"{s_best['counters_s']:.2f} s"),
        Row("ratio stripemeter / pandas (time)", f"{ratio:.2f}x"
            + (" (stripemeter faster)" if ratio < 1 else " (pandas faster, no validation/ledger)")),
        Row("ratio stripemeter / pandas-pyarrow (time)", f"{s_best['total_s'] / pa_best['total_s']:.2f}x"),
        Row("same totals (events, quantity)", "yes" if same else
            f"NO: pandas {p_best['events']}/{p_best['quantity']}, stripemeter {s_best['events']}/{s_best['quantity']}",
            "yes", same),
    ]
    common.print_table(rows, f"pandas baseline ({fmt_count(n)} events; {common.load()} at the end)")
    common.write_json(args.json, rows, {"pandas": pd_runs, "pandas_pyarrow": pa_runs, "stripemeter": sm_runs})


if __name__ == "__main__":
    if not common.maybe_run_worker():
        main()
    sys.exit(0)
