"""Publishing the analyst snapshot after a day's recount and push, against the
length of the history: `daily_usage` holds a row per counter and day,
`stripe_pushes` a row per intent and `landing_files` a row per file, so a
publication that copies them whole costs the history again after every run.

For each history length of `--days` (default 30,365): a scratch warehouse with
`--counters` counters (default 20k) counted every day of that many days
(daily_usage rows written by SQL, as sql/counters/daily_usage.sql leaves them,
though not in day order, which makes the first publication's reads dearer),
an acknowledged intent per counter and day, FILES_PER_DAY landing files a day
(an API-fed landing records a file per call), and one event per counter today.
Today's code and the code of BASELINE_COMMIT (which copied those tables into
every snapshot) each get a copy of it, publish it once, then `--repeat` times
recount today through the real daily_usage.sql, add today's intents (one per
counter) and landing files (both written by SQL) and publish again; that
publication is timed, in the same run for both codes. The snapshot's
daily_usage, stripe_pushes and landing_files are checked against the
warehouse's. Target: the publication after a day's work costs about the same
whatever the history (365 days within 1.5x of 30).

Run: python bench/snapshot.py [--counters 20000] [--days 30,365] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import common  # noqa: E402
from common import Row, fmt_count, fmt_runs, fmt_s, log, worker  # noqa: E402

BASELINE_COMMIT = "68b2c86"  # before daily_usage, stripe_pushes and landing_files were published incrementally
NOW = datetime(2025, 3, 20, 12)
TODAY = NOW.replace(hour=0)


FILES_PER_DAY = 2_000  # landing files a day: an API-fed landing records one per call


@worker
def build(db: str, counters: int, days: int) -> dict:
    from stripemeter_assets.warehouse import connect
    start = time.perf_counter()
    with connect(db, memory_limit=common.MEMORY_LIMIT) as conn:
        conn.execute(f"""
            INSERT INTO daily_usage
            SELECT 'tenant_' || (c % 5), 'api_calls', printf('cus_%07d', c), d.day, q, 3, q, q,
                   d.day + INTERVAL 9 HOUR, c, 'k' || c, d.day + INTERVAL 9 HOUR, TIMESTAMP '{NOW}'
            FROM range({counters}) r(c),
                 (SELECT (TIMESTAMP '{TODAY}' - to_days(i::INT))::DATE AS day FROM range(1, {days} + 1) t(i)) d,
                 LATERAL (SELECT ((c * 7 + epoch(d.day)::BIGINT) % 1000)::DECIMAL(38, 9) AS q)""")
        conn.execute(f"""
            INSERT INTO events
            SELECT 'tenant_' || (c % 5), 'api_calls', printf('cus_%07d', c), NULL, (c % 100)::DECIMAL(38, 9),
                   TIMESTAMP '{TODAY}' + INTERVAL (c % 40000) SECOND, 'today_' || c,
                   (md5_number('tenant_' || (c % 5) || chr(31) || 'today_' || c) >> 64)::UBIGINT, false, NULL,
                   'synthetic.jsonl', c + 1, 'synthetic', c + 1, TIMESTAMP '{NOW}'
            FROM range({counters}) r(c)""")
        conn.execute(f"""
            INSERT INTO stripe_pushes
            SELECT printf('smp_%d_%s', c, d.day), 'platform', 'live', false, 'tenant_' || (c % 5),
                   printf('cus_%07d', c), printf('cus_%07d', c), 'api_calls', 'api_calls', NULL, 'sum', 1,
                   date_trunc('month', d.day), date_trunc('month', d.day) + INTERVAL 1 MONTH, epoch(d.day)::BIGINT,
                   'delta', NULL, 3, 3, epoch(d.day)::BIGINT, 'acknowledged', 1, NULL, 'run',
                   d.day + INTERVAL 6 HOUR, d.day + INTERVAL 6 HOUR, d.day + INTERVAL 6 HOUR,
                   nextval('stripe_pushes_version')
            FROM range({counters}) r(c),
                 (SELECT (TIMESTAMP '{TODAY}' - to_days(i::INT))::DATE AS day FROM range(1, {days} + 1) t(i)) d""")
        conn.execute(f"""
            INSERT INTO landing_files
            SELECT i, printf('landing/api-%09d.jsonl', i), md5(i::VARCHAR) || md5(i::VARCHAR), 'jsonl', 300, 1, 1,
                   0, 0, 'loaded', NULL, 'batch-' || i, TIMESTAMP '{TODAY}' - to_seconds((i * 86400 // {FILES_PER_DAY})::BIGINT)
            FROM range({days} * {FILES_PER_DAY}) t(i)""")
        conn.execute("CHECKPOINT")
        rows = conn.execute("SELECT count(*) FROM daily_usage").fetchone()[0]
    return {"seconds": time.perf_counter() - start, "daily_rows": rows}


@worker
def recount_and_publish(db: str, analytics: str, repeat: int) -> dict:
    """The first publication, then `repeat` times: today's recount and the timed publication."""
    from stripemeter_assets.analytics.snapshot import publish_snapshot_from
    from stripemeter_assets.counters.recompute import recompute_days
    from stripemeter_assets.warehouse import connect, transaction
    import duckdb
    seconds = []
    with connect(db, memory_limit=common.MEMORY_LIMIT) as conn:
        start = time.perf_counter()
        publish_snapshot_from(conn, analytics, as_of=NOW)
        first = time.perf_counter() - start
        for _ in range(repeat):
            with transaction(conn):
                recompute_days(conn, TODAY, TODAY + timedelta(days=1), NOW)
                # today's push, standing in for push/write_intents.sql: an intent per counter
                conn.execute(f"""
                    INSERT INTO stripe_pushes
                    SELECT p.* REPLACE (identifier || '_' || nextval('stripe_pushes_version') AS identifier,
                                        TIMESTAMP '{NOW}' AS created_at, nextval('stripe_pushes_version') AS version)
                    FROM stripe_pushes p WHERE created_at >= TIMESTAMP '{TODAY}' - INTERVAL 1 DAY
                      AND created_at < TIMESTAMP '{TODAY}'""")
                conn.execute(f"""
                    INSERT INTO landing_files
                    SELECT f.* REPLACE (f.file_seq + 10000000000 AS file_seq, f.path || '-today' AS path,
                                        TIMESTAMP '{NOW}' AS loaded_at)
                    FROM landing_files f ORDER BY file_seq DESC LIMIT {FILES_PER_DAY}""")
            start = time.perf_counter()
            publish_snapshot_from(conn, analytics, as_of=NOW)
            seconds.append(time.perf_counter() - start)
        sql = ("SELECT (SELECT count(*) FROM daily_usage), (SELECT sum(sum_quantity) FROM daily_usage), "
               "(SELECT count(*) FROM stripe_pushes), (SELECT max(created_at) FROM stripe_pushes), "
               "(SELECT count(*) FROM landing_files)")
        expected = conn.execute(sql).fetchall()
    reader = duckdb.connect(analytics, read_only=True)
    try:
        published = reader.execute(sql).fetchall()
    finally:
        reader.close()
    return {"seconds": seconds, "first_s": first, "same": published == expected, "rows": expected[0][0],
            "intents": expected[0][2], "files": expected[0][4]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counters", type=int, default=20_000)
    parser.add_argument("--days", default="30,365")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    histories = [int(d) for d in args.days.split(",")]
    log(f"snapshot bench: {fmt_count(args.counters)} counters, histories {histories} days, {common.load()}")
    rows, best = [], {}
    with common.bench_dir("snapshot") as tmp, common.code_at(BASELINE_COMMIT) as base:
        for days in histories:
            built = tmp / f"built-{days}.duckdb"
            made = common.run_worker(__file__, "build", db=str(built), counters=args.counters, days=days)
            log(f"{days} days: {fmt_count(made['daily_rows'])} daily_usage rows built in {made['seconds']:.1f} s")
            for label, code in (("today", None), (f"base {BASELINE_COMMIT}", base)):
                db, analytics = tmp / f"w-{days}-{code is None}.duckdb", tmp / f"a-{days}-{code is None}.duckdb"
                shutil.copy(built, db)
                result = common.run_worker(__file__, "recount_and_publish", code=code, db=str(db),
                                           analytics=str(analytics), repeat=args.repeat)
                if not result["same"]:
                    raise RuntimeError(f"{label}: the snapshot's daily_usage or stripe_pushes differ from the warehouse's")
                best[(days, label)] = min(result["seconds"])
                rows.append(Row(f"{days} days ({fmt_count(result['rows'])} daily rows, {fmt_count(result['intents'])} "
                                f"intents, {fmt_count(result['files'])} files): publication after a day's work, {label}",
                                fmt_runs(result["seconds"])))
                rows.append(Row(f"  the first publication, every row", fmt_s(result["first_s"])))
                shutil.rmtree(analytics.with_name(analytics.name + ".segments"), ignore_errors=True)
                for leftover in (db, analytics):
                    leftover.unlink(missing_ok=True)
            built.unlink()
    if len(histories) > 1:
        first, last = histories[0], histories[-1]
        ratio = best[(last, "today")] / best[(first, "today")]
        rows.append(Row(f"today's code: {last} days against {first} days", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5))
    common.print_table(rows, title=f"snapshot bench ({common.load()})")


if __name__ == "__main__":
    if not common.maybe_run_worker():
        main()
