"""`python -m stripemeter_assets.cli.simulate SCENARIO.json`, run as a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]

SCENARIO = {
    "customerId": "test",
    "periodStart": "2024-01-01",
    "periodEnd": "2024-02-01",
    "usageItems": [
        {
            "metric": "api_calls",
            "quantity": 25000,
            "priceConfig": {
                "model": "tiered",
                "currency": "USD",
                "tiers": [
                    {"upTo": 10000, "unitPrice": 0.01},
                    {"upTo": 50000, "unitPrice": 0.008},
                    {"upTo": None, "unitPrice": 0.005},
                ],
            },
        },
        {
            "metric": "seats",
            "quantity": 7,
            "priceConfig": {"model": "package", "currency": "USD", "unitPrice": 40, "packageSize": 5},
        },
    ],
    "commitments": [{"amount": 100, "startDate": "2024-01-01", "endDate": "2024-12-31", "applied": 0}],
    "credits": [{"amount": 10.5}, {"amount": 99, "expiresAt": "2024-01-15"}],
    "taxRate": 8.25,
}


def run(tmp_path, content):
    path = tmp_path / "scenario.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return subprocess.run(
        [sys.executable, "-m", "stripemeter_assets.cli.simulate", str(path)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_prints_only_the_invoice_json(tmp_path):
    result = run(tmp_path, SCENARIO)
    assert (result.returncode, result.stderr) == (0, "")
    # api_calls 220.00; seats: 2 packages x 40 = 80.00; subtotal 300.00
    # commitment 100 + credit 10.50 (the other expired) -> 110.50; taxable 189.50
    # tax 189.50 x 8.25 % = 15.63375 -> 15.63; total 205.13
    assert json.loads(result.stdout) == {
        "lineItems": [
            {"metric": "api_calls", "quantity": "25000", "subtotal": "220.00"},
            {"metric": "seats", "quantity": "7", "subtotal": "80.00"},
        ],
        "subtotal": "300.00",
        "credits": "110.50",
        "tax": "15.63",
        "total": "205.13",
        "currency": "USD",
    }


def _with_first_price(**changes):
    scenario = json.loads(json.dumps(SCENARIO))
    scenario["usageItems"][0]["priceConfig"].update(changes)
    return scenario


@pytest.mark.parametrize(
    ("scenario", "field", "why"),
    [
        pytest.param(
            _with_first_price(
                tiers=[
                    {"upTo": 100, "unitPrice": 1},
                    {"upTo": 50, "unitPrice": 1},
                    {"upTo": None, "unitPrice": 1},
                ]
            ),
            "usageItems[0].priceConfig.tiers[1].upTo",
            "tiers not increasing",
            id="tiers-not-increasing",
        ),
        pytest.param(
            _with_first_price(model="stairs"),
            "usageItems[0].priceConfig.model",
            "unknown model",
            id="unknown-model",
        ),
        pytest.param({**SCENARIO, "taxRate": "lots"}, "taxRate", "not a number", id="not-a-number"),
    ],
)
def test_cli_reports_a_bad_scenario_on_one_stderr_line(tmp_path, scenario, field, why):
    result = run(tmp_path, scenario)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: {field}: {why}")
    assert result.stderr.count("\n") == 1


def test_cli_reports_invalid_json(tmp_path):
    result = run(tmp_path, '{"usageItems": [}')
    assert (result.returncode, result.stdout) == (2, "")
    assert "invalid JSON" in result.stderr


def test_cli_refuses_nan_in_json(tmp_path):
    result = run(tmp_path, json.dumps(SCENARIO).replace("8.25", "NaN"))
    assert (result.returncode, result.stdout) == (2, "")
    assert "NaN is not a number" in result.stderr


def test_cli_reports_an_unreadable_file(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "stripemeter_assets.cli.simulate", str(tmp_path / "missing.json")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: cannot read") and "No such file" in result.stderr
