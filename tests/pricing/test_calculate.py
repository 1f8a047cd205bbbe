"""Line pricing: every model worked by hand at its tier boundaries."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stripemeter_assets.pricing import PriceConfig, Tier, exact_charge, parse_price_config, price_line

D = Decimal

# The original StripeMeter README's example price.
ORIGINAL_TIERED = parse_price_config(
    {
        "model": "tiered",
        "currency": "USD",
        "tiers": [
            {"upTo": 10000, "unitPrice": D("0.01")},
            {"upTo": 50000, "unitPrice": D("0.008")},
            {"upTo": None, "unitPrice": D("0.005")},
        ],
    }
)

GRADUATED = parse_price_config(
    {
        "model": "graduated",
        "currency": "USD",
        "tiers": [
            {"upTo": 100, "unitPrice": "0.10", "flatPrice": "5"},
            {"upTo": 1000, "unitPrice": "0.05", "flatPrice": "10"},
            {"upTo": None, "unitPrice": "0.01", "flatPrice": "20"},
        ],
    }
)

VOLUME = parse_price_config(
    {
        "model": "volume",
        "currency": "USD",
        "tiers": [
            {"upTo": 100, "unitPrice": "1.00"},
            {"upTo": 1000, "unitPrice": "0.50", "flatPrice": "10"},
            {"upTo": None, "unitPrice": "0.25", "flatPrice": "50"},
        ],
    }
)


def package(rounding="up"):
    return parse_price_config(
        {
            "model": "package",
            "currency": "USD",
            "unitPrice": "2.50",
            "packageSize": 1000,
            "packageRounding": rounding,
        }
    )


def test_original_example_25000_api_calls_cost_220():
    # 10,000 x 0.01 + 15,000 x 0.008 = 100 + 120
    assert price_line(ORIGINAL_TIERED, D(25000)) == D("220.00")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0.00"),
        ("10000", "100.00"),  # at the bound: all in tier 1
        ("10001", "100.01"),  # 100 + 1 x 0.008 = 100.008
        ("10000.5", "100.00"),  # 100 + 0.5 x 0.008 = 100.004
        ("50001", "420.01"),  # 100 + 40,000 x 0.008 + 1 x 0.005 = 420.005, half up
    ],
)
def test_tiered_prices_each_unit_at_its_tier(quantity, expected):
    assert price_line(ORIGINAL_TIERED, D(quantity)) == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("0", "0.00"),  # no tier reached, no flat fee
        ("0.5", "5.05"),  # 0.5 x 0.10 + 5
        ("100", "15.00"),  # 100 x 0.10 + 5: upTo is inclusive
        ("100.5", "25.03"),  # 15 + 0.5 x 0.05 + 10 = 25.025, half up
        ("101", "25.05"),  # 15 + 1 x 0.05 + 10
        ("1000", "70.00"),  # 15 + 900 x 0.05 + 10
        ("1001", "90.01"),  # 70 + 1 x 0.01 + 20
    ],
)
def test_graduated_adds_the_flat_fee_of_every_tier_reached(quantity, expected):
    assert price_line(GRADUATED, D(quantity)) == D(expected)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("1", "1.00"),
        ("100", "100.00"),  # 100 x 1.00
        ("100.5", "60.25"),  # 100.5 x 0.50 + 10
        ("101", "60.50"),  # 101 x 0.50 + 10
        ("1000", "510.00"),  # 1000 x 0.50 + 10
        ("1001", "300.25"),  # 1001 x 0.25 + 50
    ],
)
def test_volume_prices_all_units_at_the_tier_the_quantity_falls_in(quantity, expected):
    assert price_line(VOLUME, D(quantity)) == D(expected)


def test_volume_is_cheaper_just_past_a_tier_bound():
    assert price_line(VOLUME, D(101)) < price_line(VOLUME, D(100))


def test_volume_charges_nothing_for_zero_usage():
    config = parse_price_config(
        {"model": "volume", "currency": "USD", "tiers": [{"upTo": None, "unitPrice": "1", "flatPrice": "9"}]}
    )
    assert price_line(config, D(0)) == D("0.00")


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("0", "0.00"), ("1", "2.50"), ("999.5", "2.50"), ("1000", "2.50"), ("1001", "5.00"), ("2000", "5.00")],
)
def test_package_charges_every_started_package(quantity, expected):
    assert price_line(package(), D(quantity)) == D(expected)


def test_package_rounding_down_charges_only_full_packages():
    assert price_line(package("down"), D(1999)) == D("2.50")


def test_flat_multiplies_quantity_by_unit_price():
    config = parse_price_config({"model": "flat", "currency": "USD", "unitPrice": "0.25"})
    assert price_line(config, D("12.5")) == D("3.13")  # 3.125, half up


def test_line_is_rounded_once_not_per_unit():
    config = parse_price_config({"model": "flat", "currency": "USD", "unitPrice": "0.004"})
    # Rounding each 0.004 unit price to cents first would bill 0.00.
    assert price_line(config, D(1000)) == D("4.00")


def test_exact_charge_keeps_sub_cent_precision():
    assert exact_charge(ORIGINAL_TIERED, D(10001)) == D("100.008")


def _capped(**limits):
    return parse_price_config({"model": "flat", "currency": "USD", "unitPrice": "0.01", **limits})


def test_minimum_charge_raises_a_small_line():
    assert price_line(_capped(minimumCharge="5"), D(100)) == D("5.00")


def test_minimum_charge_applies_to_zero_usage():
    assert price_line(_capped(minimumCharge="5"), D(0)) == D("5.00")


def test_maximum_charge_caps_a_large_line():
    assert price_line(_capped(maximumCharge="50"), D(10000)) == D("50.00")


def test_line_between_minimum_and_maximum_is_unchanged():
    assert price_line(_capped(minimumCharge="5", maximumCharge="50"), D(2000)) == D("20.00")


def test_yen_line_has_no_minor_unit():
    config = parse_price_config({"model": "flat", "currency": "JPY", "unitPrice": "333.5"})
    assert price_line(config, D(3)) == D("1001")  # 1000.5, half up to whole yen


def test_negative_quantity_is_refused():
    with pytest.raises(ValueError, match="negative"):
        price_line(ORIGINAL_TIERED, D(-1))


# --- property: graduated pricing never decreases with quantity -------------------------------

_amounts = st.decimals(min_value=0, max_value=100, places=4)
_quantities = st.decimals(min_value=0, max_value=10**7, places=3)


@st.composite
def _graduated_configs(draw, with_flat_fees):
    steps = draw(st.lists(st.decimals(min_value=D("0.5"), max_value=10**5, places=1), min_size=0, max_size=5))
    bounds, total = [], D(0)
    for step in steps:
        total += step
        bounds.append(total)
    tiers = [
        Tier(bound, draw(_amounts), draw(_amounts) if with_flat_fees else D(0)) for bound in [*bounds, None]
    ]
    return PriceConfig("graduated" if with_flat_fees else "tiered", "USD", tiers=tuple(tiers))


@given(config=st.booleans().flatmap(_graduated_configs), a=_quantities, b=_quantities)
def test_graduated_and_tiered_never_decrease_with_quantity(config, a, b):
    low, high = min(a, b), max(a, b)
    assert exact_charge(config, low) <= exact_charge(config, high)
    assert price_line(config, low) <= price_line(config, high)
