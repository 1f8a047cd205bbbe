"""The production instance (`deploy/dagster.yaml`) on the real PostgreSQL
server: runs, sensor cursors and the `duckdb` pool live in Postgres and hold
across processes and restarts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.instance.config import PoolGranularity

from tests import REPO_ROOT, processes
from stripemeter_assets.definitions import defs
from tests.deploy.conftest import evaluate_sensor
from stripemeter_assets.cli.runner import CURSOR_PREFIX
from tests.conftest import event

pytestmark = pytest.mark.postgres

# Runs ingest_job for the files in argv[1] in its own process, against the
# instance that DAGSTER_HOME names, optionally not before the POSIX time in
# argv[2]; prints the run id.
WORKER = """
import json, sys, time
import dagster as dg
from stripemeter_assets.definitions import defs

files = json.loads(sys.argv[1])
with dg.DagsterInstance.get() as instance:
    if len(sys.argv) > 2:
        time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    result = defs.resolve_job_def("ingest_job").execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"ops": {"usage_events": {"config": {"files": files}}}})
print(result.run_id)
sys.exit(0 if result.success else 1)
"""

BIN = Path(sys.executable).parent
FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _files_config(files: list[str]) -> dict:
    return {"ops": {"usage_events": {"config": {"files": files}}}}


def _step_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}).records
    times = {r.event_log_entry.dagster_event_type: r.event_log_entry.timestamp for r in records}
    return times[dg.DagsterEventType.STEP_START], times[dg.DagsterEventType.STEP_SUCCESS]


def _wait_for(predicate, timeout: float, what: str, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for proc in procs:
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"{proc.args[:3]} exited early ({proc.returncode}) while waiting for {what}:\n"
                            f"{(out or '')[-2000:]}\n{(err or '')[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def test_deploy_yaml_gives_postgres_storage_a_run_queue_and_a_duckdb_pool_of_one(prod_instance, prod_home):
    for storage in (prod_instance.run_storage, prod_instance.event_log_storage, prod_instance.schedule_storage):
        assert type(storage).__module__.startswith("dagster_postgres.")
        assert storage.postgres_url.startswith("postgresql+psycopg2://")
        assert storage.postgres_url.endswith(f"/{prod_home.db}")
    assert type(prod_instance.run_coordinator).__name__ == "QueuedRunCoordinator"
    concurrency = prod_instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 1
    # op granularity: enforced at step start, so in-process runs obey it too.
    assert concurrency.pool_config.pool_granularity == PoolGranularity.OP
    assert concurrency.run_queue_config.max_concurrent_runs == 4
    assert concurrency.run_queue_config.should_block_op_concurrency_limited_runs
    assert concurrency.run_queue_config.max_user_code_failure_retries == 3
    assert not prod_instance.telemetry_enabled
    assert ("runs",) in prod_home.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")


def test_ingest_run_is_stored_in_postgres(env, prod_home, prod_instance):
    env.drop_jsonl("a.jsonl", [event(quantity="5"), event(quantity="2", ts="2025-03-11T09:00:00Z")])

    result = defs.resolve_job_def("ingest_job").execute_in_process(instance=prod_instance)

    assert result.success
    assert env.sql("SELECT count(*) FROM events") == [(2,)]
    assert prod_home.sql(f"SELECT status FROM runs WHERE run_id = '{result.run_id}'") == [("SUCCESS",)]
    prod_instance.dispose()
    with prod_home.instance() as fresh:
        assert fresh.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
        [record] = fresh.fetch_materializations(dg.AssetKey("usage_events"), limit=1).records
        assert record.run_id == result.run_id
        assert record.asset_materialization.metadata["rows_loaded"].value == 2


def test_landing_sensor_cursor_survives_an_instance_restart(env, prod_home):
    env.drop_jsonl("a.jsonl", [event()])
    env.drop_jsonl("b.jsonl", [event(quantity="2")])
    with prod_home.instance() as first:
        [request] = evaluate_sensor(defs, first, "landing_sensor")
    assert len(request.run_config["ops"]["usage_events"]["config"]["files"]) == 2
    key = CURSOR_PREFIX + "landing_sensor"
    [(stored,)] = prod_home.sql(f"SELECT value FROM kvs WHERE key = '{key}'")
    assert sorted(json.loads(stored)) == sorted(str(env.landing / n) for n in ("a.jsonl", "b.jsonl"))

    with prod_home.instance() as restarted:
        assert evaluate_sensor(defs, restarted, "landing_sensor") == []
        env.drop_jsonl("c.jsonl", [event(quantity="3")])
        [only_new] = evaluate_sensor(defs, restarted, "landing_sensor")
    assert only_new.run_config["ops"]["usage_events"]["config"]["files"] == [str(env.landing / "c.jsonl")]


def test_duckdb_pool_serialises_two_ingest_processes_on_one_warehouse(env, prod_home, prod_instance):
    """Two real processes run ingest_job on the same DuckDB file. DuckDB lets
    one process open it for writing; without the pool the second would fail
    with a lock error. The test takes the only `duckdb` slot first, so both
    workers provably wait in the pool; then it lets go and the two steps run
    one after the other."""
    files = [str(env.drop_jsonl(f"{name}.jsonl", [event(quantity=q, idempotencyKey=name)]))
             for name, q in (("a", "1"), ("b", "2"))]
    storage = prod_instance.event_log_storage
    storage.initialize_concurrency_limit_to_default("duckdb")
    assert storage.get_concurrency_info("duckdb").slot_count == 1  # from deploy/dagster.yaml
    assert storage.claim_concurrency_slot("duckdb", "test-holder", "hold").is_claimed

    procs = [subprocess.Popen([sys.executable, "-c", WORKER, json.dumps([f])], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for f in files]
    try:
        _wait_for(lambda: len(storage.get_concurrency_info("duckdb").pending_run_ids) == 2, 45,
                  "both workers to wait for the duckdb slot", procs)
        assert not env.warehouse.exists()  # neither step has started
        storage.free_concurrency_slot_for_step("test-holder", "hold")
        outputs = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-3000:]
        assert "Step blocked by limit for pool duckdb" in err
        assert "Could not set lock" not in err, err[-3000:]  # DuckDB's one-writer error
    run_ids = [out.strip().splitlines()[-1] for out, _ in outputs]
    first, second = sorted(_step_window(prod_instance, run_id) for run_id in run_ids)
    assert first[1] <= second[0], f"steps overlapped: {first} {second}"
    assert env.sql("SELECT idempotency_key, quantity FROM events ORDER BY 1") == [("a", 1), ("b", 2)]
    assert storage.get_concurrency_info("duckdb").claimed_slots == []


def test_without_the_pool_a_second_writer_process_is_refused_by_duckdb(env, monkeypatch):
    """The control for the test above: why the pool exists. While another
    process has the warehouse open (as a running ingest step has), an ingest
    run outside any pool fails on DuckDB's file lock."""
    home = env.root / "dagster_home_no_pool"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    path = env.drop_jsonl("a.jsonl", [event()])
    with duckdb.connect(str(env.warehouse)):  # the other writer, mid-step
        worker = subprocess.run([sys.executable, "-c", WORKER, json.dumps([str(path)])],
                                capture_output=True, text=True, timeout=120)
    assert worker.returncode == 1
    assert "Could not set lock" in worker.stderr


def test_daemon_launches_queued_runs_one_warehouse_writer_at_a_time(env, prod_home, prod_instance):
    """Production path: the code runs in its own gRPC code server; runs
    submitted with `dagster job launch` wait in the Postgres run queue;
    `dagster-daemon run` dequeues and launches each in its own process; the
    `duckdb` pool lets one step write at a time. (The daemon's sensors run
    too and may queue an ingest run of their own for the same files; it
    waits for the pool like the others and loads nothing twice.)"""
    socket_dir = tempfile.mkdtemp(prefix="sm-grpc-")  # short path: UDS paths are limited
    sock = os.path.join(socket_dir, "code.sock")
    workspace = env.root / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server:\n      socket: {sock}\n      location_name: stripemeter\n")
    files = [str(env.drop_jsonl(f"{name}.jsonl", [event(quantity=q, idempotencyKey=name)]))
             for name, q in (("a", "1"), ("b", "2"))]
    logs = open(env.root / "services.log", "w")
    services = [processes.start(
        [str(BIN / "dagster"), "api", "grpc", "-m", "stripemeter_assets.definitions", "--socket", sock,
         "--location-name", "stripemeter"],
        cwd=REPO_ROOT, stdout=logs, stderr=subprocess.STDOUT)]
    try:
        _wait_for(lambda: os.path.exists(sock), 60, "the code server socket", services)
        cli = [str(BIN / "dagster")]
        commands = [cli + ["job", "launch", "-w", str(workspace), "-j", "ingest_job",
                           "--config-json", json.dumps(_files_config([f]))] for f in files]
        procs = [subprocess.Popen(c, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for c in commands]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err[-3000:]
        runs = prod_instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.QUEUED] * 2

        services.append(processes.start([str(BIN / "dagster-daemon"), "run", "-w", str(workspace)],
                                        stdout=logs, stderr=subprocess.STDOUT))
        _wait_for(lambda: all(prod_instance.get_run_by_id(r.run_id).status in FINISHED for r in runs), 90,
                  "the daemon to launch and finish both runs", services)
    finally:
        for proc in reversed(services):
            processes.stop(proc)
        logs.close()
        shutil.rmtree(socket_dir, ignore_errors=True)

    service_log = (env.root / "services.log").read_text()
    for run in runs:
        failures = [e.message for e in prod_instance.all_logs(run.run_id) if e.dagster_event and
                    e.dagster_event.event_type in (dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_FAILURE,
                                                   dg.DagsterEventType.ENGINE_EVENT)]
        assert prod_instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS, (
            "\n".join(failures) + service_log[-3000:])
    first, second = sorted(_step_window(prod_instance, r.run_id) for r in runs)
    assert first[1] <= second[0], f"steps overlapped: {first} {second}"
    assert "Could not set lock" not in service_log
    assert env.sql("SELECT idempotency_key, quantity FROM events ORDER BY 1") == [("a", 1), ("b", 2)]
