"""Shared fixtures: a temporary landing folder, DuckDB warehouse, config and
persistent Dagster instance per test, selected through the same environment
variables production uses."""

import atexit
import functools
import gzip
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from stripemeter_assets import settings
from stripemeter_assets.ledger import ingest_batch, list_ready_files
from stripemeter_assets.warehouse import connect, ensure_schema, literal

NOW = "2025-03-20T12:00:00Z"
BASE_CONFIG = {
    "lateness_hours": 48,
    "metrics": {
        "api_calls": {"aggregation": "sum"},
        "credits": {"aggregation": "sum", "allow_negative": True},
        "storage_gb": {"aggregation": "max"},
        "seats": {"aggregation": "last"},
        "requests": {"aggregation": "count"},
    },
}
# The bundled instance (pools, telemetry) with one SQLite event log for all
# runs: Dagster's storage "intended for test cases", which spares each run
# the creation and migration of its own event-log database (about 0.2 s a
# run). The sharded default stays what `make demo` and the packaging test run.
TEST_EVENT_LOG = """
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir:
      env: DAGSTER_HOME
"""


@functools.cache
def dagster_home_template() -> Path:
    """A Dagster home whose SQLite storages are created and migrated, copied
    for each test: creating them costs about 0.3 s of CPU, copying 60 ms."""
    home = Path(tempfile.mkdtemp(prefix="stripemeter-dagster-home-"))
    atexit.register(shutil.rmtree, home, True)
    (home / "dagster.yaml").write_text(settings.bundled("dagster.yaml") + TEST_EVENT_LOG)
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        dg.DagsterInstance.get().dispose()
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before
    return home


# Tests that mostly wait (paced Stripe calls, child processes, a daemon) for
# 20-90 s start first, so that the rest of the suite keeps the other workers
# busy meanwhile rather than one of them running alone at the end.
LONG_FIRST = (
    "tests/test_packaging.py::test_the_installed_wheel_runs_the_demo_outside_the_checkout",
    "tests/api/test_replay.py::test_replay_through_the_api_gives_the_cli_diff_and_applies_it",
    "tests/deploy/test_postgres_instance.py::test_daemon_launches_queued_runs_one_warehouse_writer_at_a_time",
    "tests/cli/test_commands.py::test_catch_up_with_nothing_pending_sends_nothing_and_succeeds",
    "tests/reliability/test_crash_recovery.py::test_catch_up_killed_with_sigkill",
    "tests/reliability/test_soak.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, prefix in enumerate(LONG_FIRST) if item.nodeid.startswith(prefix)), len(LONG_FIRST))
    items.sort(key=rank)


class Env:
    """Paths of one test's landing, warehouse and config."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch):
        self.root = root
        self.landing = root / "landing"
        self.landing.mkdir()
        self.warehouse = root / "warehouse.duckdb"
        self.config_path = root / "stripemeter.yaml"
        self.home = root / "dagster_home"
        shutil.copytree(dagster_home_template(), self.home)
        self._monkeypatch = monkeypatch
        self._duck: duckdb.DuckDBPyConnection | None = None
        self.write_config(BASE_CONFIG)
        for key, value in {
            "STRIPEMETER_LANDING": str(self.landing),
            "STRIPEMETER_WAREHOUSE": str(self.warehouse),
            "STRIPEMETER_ANALYTICS": str(root / "analytics.duckdb"),
            "STRIPEMETER_CONFIG": str(self.config_path),
            "STRIPEMETER_SETTLE_SECONDS": "0",
            "STRIPEMETER_NOW": NOW,
            "DAGSTER_HOME": str(self.home),
        }.items():
            monkeypatch.setenv(key, value)
        for key in ("STRIPE_API_KEY", "STRIPE_TEST_API_KEY", "STRIPE_API_BASE"):
            monkeypatch.delenv(key, raising=False)

    def write_config(self, data: dict) -> None:
        self.config_path.write_text(yaml.safe_dump(data))

    def set_now(self, iso: str) -> None:
        self._monkeypatch.setenv("STRIPEMETER_NOW", iso)

    def drop_jsonl(self, name: str, events: list, gz: bool = False) -> Path:
        text = "".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events)
        path = self.landing / name
        path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
        return path

    def drop_text(self, name: str, text: str) -> Path:
        path = self.landing / name
        path.write_text(text)
        return path

    def drop_parquet(self, name: str, events: list[dict]) -> Path:
        path = self.landing / name
        con = duckdb.connect()
        con.execute("CREATE TABLE t (tenantId VARCHAR, metric VARCHAR, customerRef VARCHAR, quantity VARCHAR, "
                    "ts VARCHAR, idempotencyKey VARCHAR, resourceId VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [[e.get(k) for k in ("tenantId", "metric", "customerRef", "quantity", "ts",
                                              "idempotencyKey", "resourceId")] for e in events])
        con.execute(f"COPY t TO '{path}' (FORMAT parquet)")
        con.close()
        return path

    def ingest(self, batch_id: str = "batch"):
        """One real ingest batch of every ready landing file."""
        files = list_ready_files(str(self.landing), settle=0)
        with connect(str(self.warehouse)) as conn:
            return ingest_batch(conn, files, batch_id=batch_id, config=settings.load_config(),
                                now=settings.now())

    def sql(self, query: str, params=None) -> list[tuple]:
        """`query` on the warehouse (with its schema), which is attached for
        the call to one in-memory DuckDB kept by the test: each new DuckDB
        instance costs about 22 ms of CPU, and tests read the warehouse
        thousands of times. The file is detached, so closed, on return."""
        if self._duck is None:
            self._duck = duckdb.connect()
            self._duck.execute("SET TimeZone = 'UTC'")
        self._duck.execute(f"ATTACH {literal(str(self.warehouse))} AS warehouse")
        try:
            self._duck.execute("USE warehouse")
            ensure_schema(self._duck)
            return self._duck.execute(query, params).fetchall()
        finally:
            self._duck.execute("USE memory")
            self._duck.execute("DETACH warehouse")

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    made = Env(tmp_path, monkeypatch)
    yield made
    made.close()


@pytest.fixture
def instance(env: Env):
    with dg.DagsterInstance.get() as inst:
        yield inst


def event(tenant="acme", metric="api_calls", customer="cus_A", quantity="1", ts="2025-03-10T10:00:00Z", **extra):
    e = {"tenantId": tenant, "metric": metric, "customerRef": customer, "quantity": quantity, "ts": ts}
    e.update(extra)
    return e


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
