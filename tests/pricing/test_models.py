"""Price config parsing: each invalid config names the field and says why."""

from decimal import Decimal

import pytest

from stripemeter_assets.pricing import PriceConfig, ScenarioError, Tier, parse_price_config

D = Decimal


def _tiers(*bounds):
    return [{"upTo": bound, "unitPrice": "1"} for bound in bounds]


def _error(raw):
    with pytest.raises(ScenarioError) as caught:
        parse_price_config(raw, "priceConfig")
    return str(caught.value)


def test_parses_a_native_graduated_config():
    config = parse_price_config(
        {
            "model": "graduated",
            "currency": "usd",
            "tiers": [{"upTo": 10, "unitPrice": "0.5", "flatPrice": "2"}, {"upTo": None, "flatPrice": "9"}],
            "minimumCharge": "1",
        }
    )
    assert config == PriceConfig(
        "graduated",
        "USD",
        tiers=(Tier(D(10), D("0.5"), D(2)), Tier(None, D(0), D(9))),
        minimum_charge=D(1),
    )


def test_float_inputs_are_taken_as_typed_not_as_binary():
    config = parse_price_config({"model": "flat", "currency": "USD", "unitPrice": 0.1})
    assert config.unit_price == D("0.1")


def test_unknown_model_is_named():
    assert _error({"model": "stairstep", "currency": "USD"}) == (
        "priceConfig.model: unknown model 'stairstep'"
        " (expected one of flat, package, tiered, graduated, volume)"
    )


def test_unknown_currency_is_named():
    assert "priceConfig.currency: unknown currency 'XYZ'" in _error(
        {"model": "flat", "currency": "XYZ", "unitPrice": 1}
    )


def test_missing_unit_price_is_named():
    assert _error({"model": "flat", "currency": "USD"}) == "priceConfig.unitPrice: missing"


def test_non_numeric_price_is_named():
    assert _error({"model": "flat", "currency": "USD", "unitPrice": "ten"}) == (
        "priceConfig.unitPrice: not a number, got the string 'ten'"
    )


def test_nan_price_is_refused():
    assert _error({"model": "flat", "currency": "USD", "unitPrice": "NaN"}).startswith(
        "priceConfig.unitPrice: not a number"
    )


def test_boolean_price_is_refused():
    assert (
        _error({"model": "flat", "currency": "USD", "unitPrice": True})
        == "priceConfig.unitPrice: not a number, got true"
    )


def test_negative_price_is_named():
    assert (
        _error({"model": "flat", "currency": "USD", "unitPrice": "-1"})
        == "priceConfig.unitPrice: negative (-1)"
    )


@pytest.mark.parametrize("size", ["0", "-5"])
def test_package_size_must_be_positive(size):
    error = _error({"model": "package", "currency": "USD", "unitPrice": 1, "packageSize": size})
    assert error.startswith("priceConfig.packageSize: must be greater than 0")


def test_tiers_must_increase():
    error = _error({"model": "tiered", "currency": "USD", "tiers": _tiers(100, 100, None)})
    assert error == "priceConfig.tiers[1].upTo: tiers not increasing: 100 is not greater than 100"


def test_last_tier_must_be_unbounded():
    error = _error({"model": "tiered", "currency": "USD", "tiers": _tiers(100, 200)})
    assert error == "priceConfig.tiers[1].upTo: the last tier must be unbounded (upTo: null), got 200"


def test_only_the_last_tier_may_be_unbounded():
    error = _error({"model": "volume", "currency": "USD", "tiers": _tiers(None, None)})
    assert error.startswith("priceConfig.tiers[0].upTo: missing; only the last tier is unbounded")


def test_first_tier_bound_must_be_positive():
    error = _error({"model": "volume", "currency": "USD", "tiers": _tiers(0, None)})
    assert error == "priceConfig.tiers[0].upTo: tiers not increasing: 0 is not greater than 0"


def test_tiers_must_not_be_empty():
    assert (
        _error({"model": "graduated", "currency": "USD", "tiers": []})
        == "priceConfig.tiers: must have at least one tier"
    )


def test_tiered_model_refuses_flat_fees():
    error = _error(
        {"model": "tiered", "currency": "USD", "tiers": [{"upTo": None, "unitPrice": 1, "flatPrice": 5}]}
    )
    assert error == "priceConfig.tiers[0].flatPrice: not used by model 'tiered' (use 'graduated')"


def test_field_of_another_model_is_refused():
    error = _error({"model": "flat", "currency": "USD", "unitPrice": 1, "packageSize": 10})
    assert error == "priceConfig.packageSize: not used by model 'flat'"


def test_misspelt_field_is_refused():
    error = _error({"model": "flat", "currency": "USD", "unitPrice": 1, "minimumcharge": 10})
    assert error.startswith("priceConfig.minimumcharge: unknown field")


def test_maximum_charge_below_minimum_is_refused():
    error = _error(
        {"model": "flat", "currency": "USD", "unitPrice": 1, "minimumCharge": 10, "maximumCharge": 5}
    )
    assert error == "priceConfig.maximumCharge: 5 is less than minimumCharge 10"


def test_absurdly_precise_number_is_refused():
    error = _error({"model": "flat", "currency": "USD", "unitPrice": "0." + "0" * 30 + "1"})
    assert error.startswith("priceConfig.unitPrice: too many decimal places")


def test_absurdly_large_number_is_refused():
    error = _error({"model": "flat", "currency": "USD", "unitPrice": "1e38"})
    assert error.startswith("priceConfig.unitPrice: too large")


def test_scenario_error_is_a_value_error_with_path_and_reason():
    with pytest.raises(ValueError) as caught:
        parse_price_config({"model": "flat", "currency": "USD"}, "usageItems[3].priceConfig")
    assert (caught.value.path, caught.value.reason) == ("usageItems[3].priceConfig.unitPrice", "missing")
