"""Backtest: per-customer totals of period usage under old and new prices."""

from decimal import Decimal

import pytest

from stripemeter_assets.pricing import ScenarioError, backtest

D = Decimal

OLD = {
    "api_calls": {"model": "flat", "currency": "USD", "unitPrice": "0.01"},
    "storage_gb": {"model": "flat", "currency": "USD", "unitPrice": "2"},
}
NEW = {
    "api_calls": {
        "model": "tiered",
        "currency": "USD",
        "tiers": [{"upTo": 1000, "unitPrice": "0"}, {"upTo": None, "unitPrice": "0.02"}],
    },
}

ROWS = [
    {"tenant_id": "acme", "customer_ref": "cus_B", "metric": "api_calls", "value": D(500)},
    {"tenant_id": "acme", "customer_ref": "cus_A", "metric": "api_calls", "value": D(3000)},
    {"tenant_id": "acme", "customer_ref": "cus_A", "metric": "storage_gb", "value": D("1.5")},
]


def test_backtest_compares_each_customers_totals():
    assert backtest(ROWS, OLD, NEW) == [
        # old: 3000 x 0.01 + 1.5 x 2 = 33.00; new: 2000 x 0.02 = 40.00, storage unpriced
        {
            "tenant_id": "acme",
            "customer_ref": "cus_A",
            "old_total": D("33.00"),
            "new_total": D("40.00"),
            "difference": D("7.00"),
        },
        # old: 5.00; new: inside the free tier
        {
            "tenant_id": "acme",
            "customer_ref": "cus_B",
            "old_total": D("5.00"),
            "new_total": D("0.00"),
            "difference": D("-5.00"),
        },
    ]


def test_backtest_keeps_tenants_apart():
    rows = [
        {"tenant_id": "t1", "customer_ref": "ext-1", "metric": "api_calls", "value": D(100)},
        {"tenant_id": "t2", "customer_ref": "ext-1", "metric": "api_calls", "value": D(100)},
    ]
    assert [(r["tenant_id"], r["old_total"]) for r in backtest(rows, OLD, OLD)] == [
        ("t1", D("1.00")),
        ("t2", D("1.00")),
    ]


def test_backtest_refuses_price_maps_in_different_currencies():
    euro = {"api_calls": {"model": "flat", "currency": "EUR", "unitPrice": "0.01"}}
    with pytest.raises(ScenarioError, match=r"^new_prices: must be in USD"):
        backtest(ROWS, OLD, euro)


def test_backtest_names_the_bad_row():
    rows = [*ROWS, {"tenant_id": "acme", "customer_ref": "cus_C", "metric": "api_calls", "value": D(-1)}]
    with pytest.raises(ScenarioError, match=r"^usage_rows\[3\]\.value: negative"):
        backtest(rows, OLD, NEW)


def test_backtest_names_the_bad_price():
    with pytest.raises(ScenarioError, match=r"^old_prices\.api_calls\.unitPrice: missing"):
        backtest(ROWS, {"api_calls": {"model": "flat", "currency": "USD"}}, NEW)
