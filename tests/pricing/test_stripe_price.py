"""Stripe Price objects as price configs: same prices as the equivalent native config."""

from decimal import Decimal

import pytest

from stripemeter_assets.pricing import ScenarioError, parse_price_config, price_line

D = Decimal


def test_graduated_stripe_price_equals_native_config():
    # As the API returns it (expand=["tiers"]): amounts in cents, both forms, last up_to null.
    stripe_price = {
        "id": "price_123",
        "object": "price",
        "billing_scheme": "tiered",
        "tiers_mode": "graduated",
        "currency": "usd",
        "recurring": {"interval": "month", "usage_type": "metered"},
        "tiers": [
            {
                "up_to": 1000,
                "unit_amount": None,
                "unit_amount_decimal": "0.5",
                "flat_amount": 500,
                "flat_amount_decimal": "500",
            },
            {
                "up_to": None,
                "unit_amount": None,
                "unit_amount_decimal": "0.25",
                "flat_amount": None,
                "flat_amount_decimal": None,
            },
        ],
        "unit_amount": None,
        "unit_amount_decimal": None,
        "transform_quantity": None,
    }
    native = {
        "model": "graduated",
        "currency": "USD",
        "tiers": [
            {"upTo": 1000, "unitPrice": "0.005", "flatPrice": "5"},
            {"upTo": None, "unitPrice": "0.0025"},
        ],
    }
    assert parse_price_config(stripe_price) == parse_price_config(native)


def test_volume_stripe_price_with_inf_bound_equals_native_config():
    # As passed to Price.create: the last tier's up_to is "inf".
    stripe_price = {
        "billing_scheme": "tiered",
        "tiers_mode": "volume",
        "currency": "eur",
        "tiers": [
            {"up_to": 100, "unit_amount": 100},
            {"up_to": "inf", "unit_amount": 50, "flat_amount": 1000},
        ],
    }
    native = {
        "model": "volume",
        "currency": "EUR",
        "tiers": [{"upTo": 100, "unitPrice": "1"}, {"upTo": None, "unitPrice": "0.5", "flatPrice": "10"}],
    }
    assert parse_price_config(stripe_price) == parse_price_config(native)


def test_per_unit_stripe_price_is_flat_in_major_units():
    config = parse_price_config({"billing_scheme": "per_unit", "currency": "usd", "unit_amount": 250})
    assert config == parse_price_config({"model": "flat", "currency": "USD", "unitPrice": "2.50"})


def test_zero_decimal_stripe_amount_is_already_in_major_units():
    config = parse_price_config({"billing_scheme": "per_unit", "currency": "jpy", "unit_amount": 500})
    assert config.unit_price == D(500)


def test_isk_stripe_amount_is_in_hundredths_unlike_iso():
    # Stripe keeps ISK two-decimal in its API: 10000 means 100 krónur.
    config = parse_price_config({"billing_scheme": "per_unit", "currency": "isk", "unit_amount": 10000})
    assert config.unit_price == D(100)


def test_transform_quantity_becomes_a_package_price():
    stripe_price = {
        "billing_scheme": "per_unit",
        "currency": "usd",
        "unit_amount": 250,
        "transform_quantity": {"divide_by": 1000, "round": "up"},
    }
    native = {"model": "package", "currency": "USD", "unitPrice": "2.50", "packageSize": 1000}
    assert parse_price_config(stripe_price) == parse_price_config(native)


def test_transform_quantity_rounding_down_bills_only_full_packages():
    stripe_price = {
        "billing_scheme": "per_unit",
        "currency": "usd",
        "unit_amount": 250,
        "transform_quantity": {"divide_by": 1000, "round": "down"},
    }
    assert price_line(parse_price_config(stripe_price), D(1999)) == D("2.50")


def test_unexpanded_tiers_say_how_to_get_them():
    with pytest.raises(ScenarioError, match=r"priceConfig\.tiers: missing \(retrieve the price with expand"):
        parse_price_config({"billing_scheme": "tiered", "tiers_mode": "graduated", "currency": "usd"})


def test_stripe_tier_fields_are_named_in_stripe_terms():
    stripe_price = {
        "billing_scheme": "tiered",
        "tiers_mode": "graduated",
        "currency": "usd",
        "tiers": [
            {"up_to": 10, "unit_amount": 1},
            {"up_to": 5, "unit_amount": 1},
            {"up_to": "inf", "unit_amount": 1},
        ],
    }
    with pytest.raises(ScenarioError) as caught:
        parse_price_config(stripe_price)
    assert str(caught.value) == "priceConfig.tiers[1].up_to: tiers not increasing: 5 is not greater than 10"


def test_unknown_billing_scheme_is_named():
    with pytest.raises(ScenarioError, match=r"^priceConfig\.billing_scheme: must be 'per_unit' or 'tiered'"):
        parse_price_config({"billing_scheme": "metered", "currency": "usd"})


def test_disagreeing_amount_forms_are_refused():
    with pytest.raises(
        ScenarioError, match=r"^priceConfig\.unit_amount_decimal: 251 disagrees with unit_amount 250"
    ):
        parse_price_config(
            {
                "billing_scheme": "per_unit",
                "currency": "usd",
                "unit_amount": 250,
                "unit_amount_decimal": "251",
            }
        )
