"""kill -9 of a real process in the middle of ingest or of a counter
materialization, then recovery by simply running again: no event lost, none
counted twice, counters equal to a from-scratch recomputation."""

from __future__ import annotations

import random
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from stripemeter_assets.counters.recompute import recompute_days, recompute_periods
from stripemeter_assets.cli.gen_events import write_bulk_jsonl
from stripemeter_assets.settings import load_config
from stripemeter_assets.warehouse import literal
from stripemeter_assets.warehouse import connect, transaction
from tests.conftest import utc
from tests.reliability.conftest import (
    CHILD,
    STRIPEMETER,
    Child,
    assert_ledger_consistent,
    run_to_completion,
    same_rows,
)

BULK_EVENTS = 80_000  # ~1 s of ingest here: long enough to be killed in any phase
COUNTER_EVENTS = 20_000
JAN, FEB = datetime(2025, 1, 1), datetime(2025, 2, 1)
RNG = random.Random(20250320)


@pytest.fixture(scope="module")
def bulk_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bulk") / "bulk.jsonl"
    write_bulk_jsonl(path, BULK_EVENTS, start="2025-03-01", days=15, seed=1)
    return path


def _drop_bulk(env, bulk_file: Path, name: str = "bulk.jsonl") -> Path:
    target = env.landing / name
    shutil.copyfile(bulk_file, target)
    return target


def _file_vs_ledger(env, path: Path) -> tuple[int, int, int]:
    """(events in the file, file events missing from the ledger, ledger events
    not in the file), compared on the whole billable payload and the key the
    producer sent (multisets, so a double count shows)."""
    payload = """tenant_id, metric, customer_ref, quantity, ts, explicit_key"""
    from_file = f"""
        SELECT tenantId AS tenant_id, metric, customerRef AS customer_ref, quantity::DECIMAL(38, 9) AS quantity,
               ts::TIMESTAMPTZ AT TIME ZONE 'UTC' AS ts, idempotencyKey AS explicit_key
        FROM read_json({literal(str(path))}, columns = {{tenantId: 'VARCHAR', metric: 'VARCHAR',
             customerRef: 'VARCHAR', quantity: 'VARCHAR', ts: 'VARCHAR', idempotencyKey: 'VARCHAR'}})"""
    from_ledger = f"""
        SELECT tenant_id, metric, customer_ref, quantity, ts,
               CASE WHEN key_derived THEN NULL ELSE idempotency_key END AS explicit_key
        FROM events"""
    [(total, missing, extra)] = env.sql(f"""
        SELECT (SELECT count(*) FROM ({from_file})),
               (SELECT count(*) FROM (SELECT {payload} FROM ({from_file}) EXCEPT ALL SELECT {payload} FROM ({from_ledger}))),
               (SELECT count(*) FROM (SELECT {payload} FROM ({from_ledger}) EXCEPT ALL SELECT {payload} FROM ({from_file})))""")
    return total, missing, extra


def _assert_loaded_exactly_once(env, path: Path, content: Path | None = None) -> None:
    """`content`: the file's bytes elsewhere, once an ingest run moved `path` out of the landing."""
    total, missing, extra = _file_vs_ledger(env, content or path)
    assert (total, missing, extra) == (BULK_EVENTS, 0, 0)
    assert env.sql("SELECT count(*), count(DISTINCT (tenant_id, idempotency_key)) FROM events") == [
        (BULK_EVENTS, BULK_EVENTS)]
    assert env.sql("SELECT count(*), sum(rows_loaded) FROM landing_files WHERE status = 'loaded' AND path = ?",
                   [str(path)]) == [(1, BULK_EVENTS)]
    assert_ledger_consistent(env)


def _assert_all_or_nothing(env, path: Path) -> bool:
    """Right after the kill: the warehouse opens (WAL replayed) and holds the
    batch entirely or not at all. Returns whether it committed."""
    events = env.sql("SELECT count(*) FROM events")[0][0]
    files = env.sql("SELECT status, rows_loaded FROM landing_files")
    quarantined = env.sql("SELECT count(*) FROM quarantine")[0][0]
    if events == 0:
        assert files == [] and quarantined == 0
        assert env.sql("SELECT count(*) FROM watermarks") == [(0,)]
        return False
    assert files == [("loaded", BULK_EVENTS)]
    _assert_loaded_exactly_once(env, path)
    return True


@pytest.mark.parametrize("kill_at", [
    "hold:after:ledger/append.sql",    # events appended, transaction open
    "hold:after:ledger/watermarks.sql",  # the last script before COMMIT
    "random",                          # anywhere between opening the warehouse and exiting
])
def test_ingest_killed_with_sigkill_recovers_on_rerun_without_loss_or_double_count(env, bulk_file, kill_at):
    path = _drop_bulk(env, bulk_file)
    mode, _, where = kill_at.partition(":")
    extra = {"SM_HOLD_AFTER": where} if mode == "hold" else {}
    child = Child([sys.executable, str(CHILD), "ingest"], **extra)
    try:
        if mode == "hold":
            assert child.wait_for_line(f"PHASE {where}"), child.finish()
        else:
            assert child.wait_for_line("PHASE connect"), child.finish()
            time.sleep(RNG.uniform(0.0, 1.2))
        killed = child.kill9()
    finally:
        child.kill9()
    if mode == "hold":
        assert killed
    committed = _assert_all_or_nothing(env, path)
    if mode == "hold":
        assert not committed

    result = env.ingest("recovery")  # the operator simply runs it again
    assert [f.status for f in result.files] == (["skipped"] if committed else ["loaded"])
    _assert_loaded_exactly_once(env, path)
    again = env.ingest("again")
    assert again.total("rows_loaded") == 0
    _assert_loaded_exactly_once(env, path)


def _counters_equal_ledger(env) -> None:
    """period_usage for March agrees with an independent SQL aggregation of
    the ledger: every counter with its event count, and the sum metric's
    total."""
    expected = env.sql("""SELECT tenant_id, metric, customer_ref, count(*) FROM events
                          WHERE ts >= '2025-03-01' AND ts < '2025-04-01' GROUP BY ALL ORDER BY ALL""")
    actual = env.sql("""SELECT tenant_id, metric, customer_ref, event_count FROM period_usage
                        WHERE period_start = '2025-03-01' ORDER BY ALL""")
    same_rows(actual, expected, "period_usage event counts vs the ledger")
    assert env.sql("""SELECT sum(value) FROM period_usage WHERE metric = 'api_calls'""") == env.sql(
        """SELECT sum(quantity) FROM events WHERE metric = 'api_calls'""")


@pytest.mark.parametrize("kill_at", [
    "after:ledger/append.sql",  # the ingest run dies inside its DuckDB transaction
    "committed",                # ... right after DuckDB committed, before Dagster recorded the run
])
def test_catch_up_killed_with_sigkill_then_rerun_loads_everything_and_counts_it(env, instance, bulk_file, kill_at):
    path = _drop_bulk(env, bulk_file)
    child = Child([sys.executable, str(CHILD), "catch-up"], SM_HOLD_AFTER=kill_at)
    try:
        assert child.wait_for_line(f"PHASE {kill_at}", timeout=90), child.finish()
        assert child.kill9()
    finally:
        child.kill9()
    _assert_all_or_nothing(env, path)

    code, out, err = run_to_completion([str(STRIPEMETER), "catch-up"], instance)
    assert code == 0, out + err[-2000:]
    _assert_loaded_exactly_once(env, path, content=bulk_file)
    assert not path.exists() and list((env.landing / ".ingested").glob("*/*/bulk.jsonl"))
    _counters_equal_ledger(env)


# -- counters ------------------------------------------------------------------

def _daily_snapshot(env) -> list[tuple]:
    return env.sql("SELECT * EXCLUDE (computed_at) FROM daily_usage ORDER BY ALL")


def _daily_from_scratch(env) -> list[tuple]:
    """Every day recomputed from the ledger in a throwaway transaction."""
    now = utc("2025-03-20T12:00:00Z")
    with connect(str(env.warehouse)) as conn:
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute("DELETE FROM daily_usage")
            recompute_days(conn, JAN, FEB, now)
            rows = conn.execute("SELECT * EXCLUDE (computed_at) FROM daily_usage ORDER BY ALL").fetchall()
        finally:
            conn.execute("ROLLBACK")
    return rows


def _independent_daily(env) -> list[tuple]:
    return env.sql("""SELECT tenant_id, metric, customer_ref, ts::DATE, sum(quantity), count(*), max(quantity)
                      FROM events WHERE ts >= '2025-01-01' AND ts < '2025-02-01' GROUP BY ALL ORDER BY ALL""")


@pytest.mark.parametrize("kill_at", ["hold:recompute:done", "random"])
def test_counter_materialization_killed_with_sigkill_reruns_to_the_from_scratch_numbers(
        env, instance, tmp_path, kill_at):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    write_bulk_jsonl(first, COUNTER_EVENTS, start="2025-01-01", days=30, customers=500, seed=1)
    write_bulk_jsonl(second, COUNTER_EVENTS, start="2025-01-01", days=30, customers=500, seed=2)
    shutil.copyfile(first, env.landing / "first.jsonl")
    env.ingest("b1")
    now = utc("2025-03-20T12:00:00Z")
    with connect(str(env.warehouse)) as conn, transaction(conn):
        recompute_days(conn, JAN, FEB, now)
    before = _daily_snapshot(env)
    shutil.copyfile(second, env.landing / "second.jsonl")  # new events in every day: counters now stale
    env.ingest("b2")

    mode, _, where = kill_at.partition(":")
    extra = {"SM_HOLD_AFTER": where} if mode == "hold" else {}
    child = Child([sys.executable, str(CHILD), "daily", "2025-01-01", "2025-01-31"], **extra)
    try:
        if mode == "hold":
            assert child.wait_for_line(f"PHASE {where}", timeout=90), child.finish()
        else:
            assert child.wait_for_line("PHASE recompute:start", timeout=90), child.finish()
            time.sleep(RNG.uniform(0.0, 0.4))
        child.kill9()
    finally:
        child.kill9()

    scratch = _daily_from_scratch(env)
    after_kill = _daily_snapshot(env)
    # the partition rewrite is all or nothing
    if mode == "hold" or after_kill != scratch:
        same_rows(after_kill, before, "daily_usage after the kill vs before it")

    code, out, err = run_to_completion([sys.executable, str(CHILD), "daily", "2025-01-01", "2025-01-31"], instance)
    assert code == 0 and "PHASE done success=True" in out, out + err[-2000:]
    same_rows(_daily_snapshot(env), scratch, "daily_usage after the rerun vs from scratch")
    same_rows([r[:7] for r in _daily_snapshot(env)], _independent_daily(env), "daily_usage vs the ledger")
    materialized = instance.get_materialized_partitions(dg.AssetKey("daily_usage"))
    assert {f"2025-01-{d:02d}" for d in range(1, 32)} <= materialized
    with connect(str(env.warehouse)) as conn, transaction(conn):
        recompute_periods(conn, load_config(), JAN, FEB, now, "check")
    assert env.sql("SELECT sum(event_count) FROM period_usage") == [(2 * COUNTER_EVENTS,)]
