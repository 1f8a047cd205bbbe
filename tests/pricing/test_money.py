from decimal import Decimal

import pytest

from stripemeter_assets.pricing import format_money, minor_unit_exponent, round_money


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("CLP", 0),
        ("BHD", 3),
        ("KWD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
    ],
)
def test_minor_unit_exponent_follows_iso_4217(currency, exponent):
    assert minor_unit_exponent(currency) == exponent


def test_round_money_rounds_half_up_not_half_even():
    # Half-even would give 0.02; billing rounds halves up.
    assert round_money(Decimal("0.025"), "USD") == Decimal("0.03")


def test_round_money_rounds_yen_to_whole_units():
    assert round_money(Decimal("1000.5"), "JPY") == Decimal("1001")


def test_format_money_writes_exactly_the_currency_places():
    assert format_money(Decimal("12.3"), "USD") == "12.30"
    assert format_money(Decimal("1234"), "JPY") == "1234"
    assert format_money(Decimal("1.5"), "KWD") == "1.500"


def test_format_money_never_uses_an_exponent():
    assert format_money(Decimal("1E+3"), "USD") == "1000.00"


def test_format_money_never_writes_negative_zero():
    assert format_money(Decimal("-0.001"), "USD") == "0.00"
