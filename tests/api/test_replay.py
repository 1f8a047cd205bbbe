"""POST /v1/replay submits replay_job to the Dagster instance; its status
carries the same per-counter diff as `stripemeter replay`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from stripemeter_assets.cli import commands as cli
from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from tests import REPO_ROOT, processes
from tests.api.conftest import auth, http
from tests.conftest import event

RANGE = {"start": "2025-03-01", "end": "2025-03-02"}


@pytest.fixture
def daemon(env):
    """The Dagster daemon, which launches queued runs, as under `dagster dev`."""
    proc = processes.start([os.path.join(os.path.dirname(sys.executable), "dagster-daemon"), "run",
                            "-w", str(REPO_ROOT / "workspace.yaml")], cwd=REPO_ROOT,
                           stdout=subprocess.DEVNULL, stderr=open(env.root / "daemon.log", "ab"))
    yield proc
    processes.stop(proc, timeout=30)


def _wait(server, key, run_id, timeout=240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"{server.url}/v1/replay/{run_id}", headers=auth(key)).json()
        if status["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"replay run {run_id} did not finish in {timeout} s")


def _period(env):
    return env.sql("SELECT value, event_count FROM period_usage WHERE metric = 'api_calls' AND customer_ref = 'cus_A'")


def test_replay_through_the_api_gives_the_cli_diff_and_applies_it(env, keys, server, instance, daemon, capsys):
    env.drop_jsonl("e1.jsonl", [event(quantity="5", ts="2025-03-10T10:00:00Z")])
    assert not catch_up(defs, instance, settle=False).failed
    env.drop_jsonl("e2.jsonl", [event(quantity="3", ts="2025-03-01T10:00:00Z", idempotencyKey="old")])
    assert not catch_up(defs, instance, settle=False).failed
    assert env.sql("SELECT status FROM late_events") == [("pending",)]

    assert cli.main(["replay", "--start", RANGE["start"], "--end", RANGE["end"], "--tenant", "acme", "--dry-run"]) == 0
    cli_table = capsys.readouterr().out.split("\n\n")[0].strip()
    assert "| acme | api_calls | cus_A | 2025-03-01 00:00:00 | 5.000000000 | 8.000000000 | 3.000000000 |" in cli_table

    submitted = http.post(server.url + "/v1/replay", headers=auth(keys["acme"]), timeout=300,
                          json={"tenantId": "acme", **RANGE, "dryRun": True})
    assert submitted.status_code == 202, submitted.text
    run_id = submitted.json()["runId"]
    dry = _wait(server, keys["acme"], run_id)
    assert dry["status"] == "SUCCESS"
    assert dry["diffTable"] == cli_table
    assert dry["diff"] == [{"tenantId": "acme", "metric": "api_calls", "customerRef": "cus_A", "period": "2025-03-01 00:00:00",
                            "old": "5.000000000", "new": "8.000000000", "delta": "3.000000000"}]
    assert dry["dryRun"] is True and dry["lateEventsApplied"] == 1
    assert _period(env) == [(Decimal("5"), 1)]  # a dry run writes nothing
    # The run is in the instance the UI shows, tagged with its tenant.
    run = instance.get_run_by_id(run_id)
    assert run.job_name == "replay_job" and run.tags["stripemeter/tenant"] == "acme"
    # Another tenant's key cannot read it.
    assert http.get(f"{server.url}/v1/replay/{run_id}", headers=auth(keys["globex"])).status_code == 403
    assert http.get(f"{server.url}/v1/replay/nope", headers=auth(keys["acme"])).status_code == 404

    applied = http.post(server.url + "/v1/replay", headers=auth(keys["acme"]), timeout=300,
                        json={"tenantId": "acme", **RANGE})
    assert _wait(server, keys["acme"], applied.json()["runId"])["status"] == "SUCCESS"
    assert _period(env) == [(Decimal("8"), 2)]
    assert env.sql("SELECT status FROM late_events") == [("applied",)]


def test_replay_with_a_bad_range_is_refused(keys, server):
    answer = http.post(server.url + "/v1/replay", headers=auth(keys["acme"]),
                       json={"tenantId": "acme", "start": "2025-03-02", "end": "2025-03-01"})
    assert answer.status_code == 400
