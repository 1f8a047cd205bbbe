"""The pricing backtest on the warehouse's `period_usage`, and the console scripts run as a
user would (`stripemeter simulate`, the backtest command)."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import yaml

from stripemeter_assets.definitions import defs
from stripemeter_assets.projection.costs import backtest_period, parse_price_book
from stripemeter_assets.cli.runner import catch_up
from stripemeter_assets.warehouse import connect
from tests.conftest import BASE_CONFIG, event

PROJECT = Path(__file__).resolve().parents[2]
MARCH = datetime(2025, 3, 1, tzinfo=UTC)
CURRENT = {
    "api_calls": {"model": "graduated", "currency": "USD",
                  "tiers": [{"upTo": 10000, "unitPrice": "0.01"}, {"upTo": None, "unitPrice": "0.008"}]},
    "seats": {"model": "flat", "currency": "USD", "unitPrice": "12"},
}
CANDIDATE = {
    "api_calls": {"model": "volume", "currency": "USD",
                  "tiers": [{"upTo": 10000, "unitPrice": "0.009"}, {"upTo": None, "unitPrice": "0.007"}]},
    "seats": {"model": "flat", "currency": "USD", "unitPrice": "15"},
}


def script(name: str) -> str:
    """A console script of the project's virtualenv (the one running the tests)."""
    venv = PROJECT / ".venv" / "bin" / name
    return str(venv if venv.exists() else Path(sys.executable).with_name(name))


def land_march(env, instance, prices=CURRENT, **config):
    """cus_A: 6000 api_calls and 3 seats; cus_B: 15000 api_calls; cus_C: only an unpriced metric."""
    env.write_config({**BASE_CONFIG, "prices": prices, **config})
    env.drop_jsonl("march.jsonl", [
        event(customer="cus_A", quantity="6000", ts="2025-03-02T10:00:00Z"),
        event(customer="cus_A", metric="seats", quantity="3", ts="2025-03-02T10:00:00Z"),
        event(customer="cus_B", quantity="15000", ts="2025-03-03T10:00:00Z"),
        event(customer="cus_C", metric="requests", quantity="1", ts="2025-03-03T10:00:00Z"),
    ])
    assert not catch_up(defs, instance, settle=False).failed


def test_backtest_compares_old_and_new_totals_per_customer(env, instance):
    land_march(env, instance)
    with connect(str(env.warehouse), read_only=True) as conn:
        rows = backtest_period(conn, MARCH, CANDIDATE, CURRENT)
    # cus_A old: 6000 x 0.01 = 60 + 3 x 12 = 36 -> 96.00; new: 6000 x 0.009 = 54 + 3 x 15 = 45 -> 99.00
    # cus_B old: 10000 x 0.01 = 100 + 5000 x 0.008 = 40 -> 140.00; new (volume): 15000 x 0.007 = 105.00
    # cus_C has only unpriced usage: not listed
    assert [(r["customer_ref"], r["old_total"], r["new_total"], r["difference"], r["currency"]) for r in rows] == [
        ("cus_A", Decimal("96.00"), Decimal("99.00"), Decimal("3.00"), "USD"),
        ("cus_B", Decimal("140.00"), Decimal("105.00"), Decimal("-35.00"), "USD"),
    ]


def test_backtest_uses_the_tenants_current_price_overrides(env, instance):
    land_march(env, instance)
    env.drop_jsonl("beta.jsonl", [event(tenant="beta", customer="cus_Z", quantity="100", ts="2025-03-04T10:00:00Z")])
    assert not catch_up(defs, instance, settle=False).failed
    current = parse_price_book({"prices": CURRENT, "prices_by_tenant": {
        "beta": {"api_calls": {"model": "flat", "currency": "USD", "unitPrice": "0.05"}}}})
    with connect(str(env.warehouse), read_only=True) as conn:
        [beta] = backtest_period(conn, MARCH, CANDIDATE, current, tenant="beta")
    # old: 100 x 0.05 = 5.00 (beta's override); new: 100 x 0.009 = 0.90
    assert (beta["customer_ref"], beta["old_total"], beta["new_total"]) == ("cus_Z", Decimal("5.00"), Decimal("0.90"))


def test_backtest_command_prints_json_totals(env, instance, tmp_path):
    land_march(env, instance)
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump({"prices": CANDIDATE}))
    result = subprocess.run(
        [sys.executable, "-m", "stripemeter_assets.cli.backtest", "--period", "2025-03", "--prices", str(candidate),
         "--json"], cwd=PROJECT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    report = json.loads(result.stdout)
    assert report["customers"][1] == {"tenant_id": "acme", "customer_ref": "cus_B", "currency": "USD",
                                      "old_total": "140.00", "new_total": "105.00", "difference": "-35.00"}
    # 96 + 140 = 236.00 old, 99 + 105 = 204.00 new
    assert report["totals"] == {"USD": {"old_total": "236.00", "new_total": "204.00", "difference": "-32.00"}}


def test_backtest_command_rejects_a_bad_period_on_stderr(env, tmp_path):
    candidate = tmp_path / "candidate.yaml"
    candidate.write_text(yaml.safe_dump(CANDIDATE))
    result = subprocess.run(
        [sys.executable, "-m", "stripemeter_assets.cli.backtest", "--period", "2025-13", "--prices", str(candidate)],
        cwd=PROJECT, env=os.environ.copy(), capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "error: --period: '2025-13' is not a billing period (YYYY-MM)\n"


def test_stripemeter_simulate_prints_only_the_invoice_json(env, tmp_path):
    scenario = {
        "customerId": "cus_A", "periodStart": "2025-03-01", "periodEnd": "2025-04-01",
        "usageItems": [{"metric": "api_calls", "quantity": 12000, "priceConfig": {
            "model": "graduated", "currency": "USD",
            "tiers": [{"upTo": 10000, "unitPrice": "0.01"}, {"upTo": None, "unitPrice": "0.008", "flatPrice": "5"}]}}],
        "credits": [{"amount": "21"}],
        "taxRate": 10,
    }
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    result = subprocess.run([script("stripemeter"), "simulate", str(path)], env=os.environ.copy(),
                            capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (0, "")
    # 10000 x 0.01 = 100 + 2000 x 0.008 = 16 + flat 5 = 121.00; credit 21 -> 100.00 taxable; tax 10.00
    assert json.loads(result.stdout) == {
        "lineItems": [{"metric": "api_calls", "quantity": "12000", "subtotal": "121.00"}],
        "subtotal": "121.00", "credits": "21.00", "tax": "10.00", "total": "110.00", "currency": "USD",
    }
