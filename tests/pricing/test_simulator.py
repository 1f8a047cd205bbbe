"""Invoice simulation: lines, commitments, credits, tax, currencies and scenario errors."""

import copy
from decimal import Decimal

import pytest

from stripemeter_assets.pricing import InvoiceSimulator, ScenarioError

D = Decimal

API_CALLS = {
    "metric": "api_calls",
    "quantity": 25000,
    "priceConfig": {
        "model": "tiered",
        "currency": "USD",
        "tiers": [
            {"upTo": 10000, "unitPrice": "0.01"},
            {"upTo": 50000, "unitPrice": "0.008"},
            {"upTo": None, "unitPrice": "0.005"},
        ],
    },
}  # 220.00

STORAGE = {
    "metric": "storage_gb",
    "quantity": "12.5",
    "priceConfig": {"model": "flat", "currency": "USD", "unitPrice": "2"},
}  # 25.00


def scenario(**overrides):
    base = {
        "customerId": "cus_123",
        "periodStart": "2024-01-01",
        "periodEnd": "2024-02-01",
        "usageItems": [API_CALLS, STORAGE],
    }
    return copy.deepcopy({**base, **overrides})


def simulate(raw):
    return InvoiceSimulator().simulate(raw)


def test_original_example_invoice():
    invoice = simulate(scenario(usageItems=[API_CALLS]))
    assert invoice == {
        "lineItems": [{"metric": "api_calls", "quantity": "25000", "subtotal": "220.00"}],
        "subtotal": "220.00",
        "credits": "0.00",
        "tax": "0.00",
        "total": "220.00",
        "currency": "USD",
    }


def test_commitment_credits_and_tax_on_one_invoice():
    invoice = simulate(
        scenario(
            commitments=[{"amount": 150, "applied": 100, "startDate": "2024-01-01", "endDate": "2025-01-01"}],
            credits=[{"amount": 30}],
            taxRate="8.25",
        )
    )
    # subtotal 220 + 25 = 245; commitment covers its remaining 50, credit 30 -> 80 deducted;
    # taxable 165; tax 165 x 8.25 % = 13.6125 -> 13.61; total 178.61
    assert invoice == {
        "lineItems": [
            {"metric": "api_calls", "quantity": "25000", "subtotal": "220.00"},
            {"metric": "storage_gb", "quantity": "12.5", "subtotal": "25.00"},
        ],
        "subtotal": "245.00",
        "credits": "80.00",
        "tax": "13.61",
        "total": "178.61",
        "currency": "USD",
    }


def test_credit_expired_before_period_end_is_ignored():
    invoice = simulate(scenario(credits=[{"amount": 30, "expiresAt": "2024-01-31T23:59:59Z"}]))
    assert (invoice["credits"], invoice["total"]) == ("0.00", "245.00")


def test_credit_expiring_at_period_end_applies():
    invoice = simulate(scenario(credits=[{"amount": 30, "expiresAt": "2024-02-01"}]))
    assert (invoice["credits"], invoice["total"]) == ("30.00", "215.00")


def test_commitment_starting_at_period_end_is_not_drawn():
    invoice = simulate(
        scenario(commitments=[{"amount": 100, "startDate": "2024-02-01", "endDate": "2025-01-01"}])
    )
    assert (invoice["credits"], invoice["total"]) == ("0.00", "245.00")


def test_commitment_ending_at_period_start_is_not_drawn():
    invoice = simulate(
        scenario(commitments=[{"amount": 100, "startDate": "2023-01-01", "endDate": "2024-01-01"}])
    )
    assert (invoice["credits"], invoice["total"]) == ("0.00", "245.00")


def test_commitment_covers_no_more_than_the_usage():
    invoice = simulate(
        scenario(commitments=[{"amount": 1000, "startDate": "2024-01-01", "endDate": "2025-01-01"}])
    )
    assert (invoice["credits"], invoice["total"]) == ("245.00", "0.00")


def test_taxable_amount_is_floored_at_zero():
    invoice = simulate(scenario(credits=[{"amount": 200}, {"amount": 200}], taxRate=10))
    assert (invoice["credits"], invoice["tax"], invoice["total"]) == ("245.00", "0.00", "0.00")


def test_tax_is_rounded_half_up_to_minor_units():
    line = {
        "metric": "m",
        "quantity": 1,
        "priceConfig": {"model": "flat", "currency": "USD", "unitPrice": "0.50"},
    }
    invoice = simulate(scenario(usageItems=[line], taxRate=5))  # 0.025 -> 0.03
    assert (invoice["tax"], invoice["total"]) == ("0.03", "0.53")


def test_yen_invoice_has_no_minor_unit():
    line = {
        "metric": "calls",
        "quantity": 3,
        "priceConfig": {"model": "flat", "currency": "JPY", "unitPrice": "333.5"},
    }
    invoice = simulate(scenario(usageItems=[line], taxRate=10))
    # 3 x 333.5 = 1000.5 -> 1001; tax 100.1 -> 100; total 1101
    assert invoice == {
        "lineItems": [{"metric": "calls", "quantity": "3", "subtotal": "1001"}],
        "subtotal": "1001",
        "credits": "0",
        "tax": "100",
        "total": "1101",
        "currency": "JPY",
    }


def test_three_decimal_currency_keeps_three_places():
    line = {
        "metric": "m",
        "quantity": 1,
        "priceConfig": {"model": "flat", "currency": "KWD", "unitPrice": "1.2345"},
    }
    assert simulate(scenario(usageItems=[line]))["total"] == "1.235"


def test_empty_invoice_needs_a_declared_currency():
    invoice = simulate(scenario(usageItems=[], currency="EUR"))
    assert (invoice["lineItems"], invoice["total"], invoice["currency"]) == ([], "0.00", "EUR")


def test_stripe_price_can_be_pasted_as_price_config():
    line = {
        "metric": "api_calls",
        "quantity": 25000,
        "priceConfig": {
            "billing_scheme": "tiered",
            "tiers_mode": "graduated",
            "currency": "usd",
            "tiers": [
                {"up_to": 10000, "unit_amount_decimal": "1"},
                {"up_to": 50000, "unit_amount_decimal": "0.8"},
                {"up_to": "inf", "unit_amount_decimal": "0.5"},
            ],
        },
    }
    assert simulate(scenario(usageItems=[line]))["total"] == "220.00"


def _error(raw):
    with pytest.raises(ScenarioError) as caught:
        simulate(raw)
    return str(caught.value)


def test_mixed_currencies_are_refused():
    euro = copy.deepcopy(STORAGE)
    euro["priceConfig"]["currency"] = "EUR"
    assert _error(scenario(usageItems=[API_CALLS, euro])) == (
        "usageItems[1].priceConfig.currency: EUR differs from USD (usageItems[0].priceConfig.currency);"
        " an invoice has one currency"
    )


def test_error_names_the_nested_tier_field():
    bad = copy.deepcopy(API_CALLS)
    bad["priceConfig"]["tiers"][2]["upTo"] = 60000
    assert _error(scenario(usageItems=[STORAGE, bad])) == (
        "usageItems[1].priceConfig.tiers[2].upTo: the last tier must be unbounded (upTo: null), got 60000"
    )


def test_missing_quantity_is_named():
    bad = copy.deepcopy(STORAGE)
    del bad["quantity"]
    assert _error(scenario(usageItems=[bad])) == "usageItems[0].quantity: missing"


def test_negative_quantity_is_named():
    bad = {**STORAGE, "quantity": -3}
    assert _error(scenario(usageItems=[bad])) == "usageItems[0].quantity: negative (-3)"


def test_period_must_end_after_it_starts():
    assert _error(scenario(periodEnd="2024-01-01")) == "periodEnd: must be after periodStart"


def test_bad_date_is_named():
    assert (
        _error(scenario(periodStart="January")) == "periodStart: not an ISO 8601 date or date-time: 'January'"
    )


def test_credit_finer_than_the_minor_unit_is_refused():
    assert (
        _error(scenario(credits=[{"amount": "0.005"}]))
        == "credits[0].amount: 0.005 has more decimal places than USD allows"
    )


def test_commitment_applied_beyond_its_amount_is_refused():
    commitment = {"amount": 10, "applied": 20, "startDate": "2024-01-01", "endDate": "2024-02-01"}
    assert (
        _error(scenario(commitments=[commitment]))
        == "commitments[0].applied: 20 exceeds the commitment amount 10"
    )


def test_unknown_scenario_field_is_refused():
    assert _error(scenario(taxrate=8)).startswith("taxrate: unknown field")


def test_scenario_must_be_an_object():
    assert _error([1, 2]) == "scenario: must be an object, got a list"
