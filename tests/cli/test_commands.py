"""The `stripemeter` console script, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from stripemeter_assets.stripe_emulator import EmulatorServer
from tests.conftest import BASE_CONFIG, NOW, event

STRIPEMETER = str(Path(sys.executable).parent / "stripemeter")


def _run(args, env_overrides, timeout=300):
    env = {**os.environ, **env_overrides}
    return subprocess.run([STRIPEMETER, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_catch_up_exits_non_zero_when_a_run_fails(env):
    env.drop_jsonl("a.jsonl", [event()])
    env.write_config({"prices": {"api_calls": {"model": "nonsense", "currency": "USD"}}})
    result = _run(["catch-up"], {})
    assert result.returncode == 1
    assert "FAILED period_usage_job" in result.stdout
    assert "ok     ingest_job" in result.stdout


def test_catch_up_with_nothing_pending_sends_nothing_and_succeeds(env):
    env.write_config({**BASE_CONFIG, "stripe": {"meters": [
        {"tenant": "*", "metric": "api_calls", "event_name": "api_calls"}]}})
    env.drop_jsonl("a.jsonl", [event(quantity="5")])
    with EmulatorServer(now=NOW) as emu:
        emu.create_meter("api_calls", formula="sum")
        emu.create_customer("cus_A")
        stripe_env = {"STRIPE_API_BASE": emu.url, "STRIPE_API_KEY": "sk_test_" + "cli" * 4}
        first = _run(["catch-up"], stripe_env)
        assert first.returncode == 0, first.stderr[-2000:]
        assert [e["payload"]["value"] for e in emu.meter_events()] == ["5"]
        emu.clear_requests()
        second = _run(["catch-up"], stripe_env)
        assert second.returncode == 0, second.stderr[-2000:]
        assert "FAILED" not in second.stdout
        assert [r for r in emu.requests() if r["method"] != "GET"] == []  # reads to reconcile, no send
        assert len(emu.meter_events()) == 1
    con = duckdb.connect(str(env.warehouse), read_only=True)
    assert con.execute("SELECT count(*) FROM stripe_pushes").fetchone()[0] == 1


def test_simulate_prints_only_the_invoice(env, tmp_path):
    scenario = {"customerId": "c", "periodStart": "2024-01-01", "periodEnd": "2024-02-01", "usageItems": [
        {"metric": "api_calls", "quantity": 25000, "priceConfig": {"model": "tiered", "currency": "USD", "tiers": [
            {"upTo": 10000, "unitPrice": 0.01}, {"upTo": 50000, "unitPrice": 0.008}, {"upTo": None, "unitPrice": 0.005}]}}]}
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    result = _run(["simulate", str(path)], {})
    assert result.returncode == 0
    invoice = json.loads(result.stdout)
    assert invoice["total"] == "220.00" and invoice["currency"] == "USD"
