"""Currencies (ISO 4217 minor units) and the exact arithmetic money is computed with."""

from __future__ import annotations

from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

# Every input number is bounded when parsed (fields.MAX_INTEGER_DIGITS / MAX_FRACTION_DIGITS), so
# products and sums of them fit well inside 200 digits; trapping Inexact turns any rounding the
# context would otherwise do silently into an error instead of a wrong bill.
EXACT = Context(prec=200, traps=[Inexact, InvalidOperation, DivisionByZero, Overflow])

# The one place money is allowed to lose precision: rounding to minor units, half up.
_ROUNDING = Context(prec=200, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow])


def _codes(exponent: int, codes: str) -> dict[str, int]:
    return dict.fromkeys(codes.split(), exponent)


# Active ISO 4217 codes with their minor-unit exponent (precious metals and test codes left out).
MINOR_UNITS: dict[str, int] = {
    **_codes(
        2,
        """
        AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
        BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
        FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD
        KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
        NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP
        SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS
        VED VES WST XCD XCG YER ZAR ZMW ZWG
        """,
    ),
    **_codes(0, "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"),
    **_codes(3, "BHD IQD JOD KWD LYD OMR TND"),
    **_codes(4, "CLF UYW"),
}

# One minor unit per currency, as the exponent quantize() rounds to (Decimal("0.01") for USD).
_QUANTUM = {code: Decimal(1).scaleb(-exponent) for code, exponent in MINOR_UNITS.items()}


def minor_unit_exponent(currency: str) -> int:
    """Number of decimal places of `currency` (an upper-case ISO 4217 code): USD 2, JPY 0, KWD 3."""
    return MINOR_UNITS[currency]


def round_money(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to whole minor units of `currency` (12.345 USD -> 12.35)."""
    return amount.quantize(_QUANTUM[currency], context=_ROUNDING)


def fits_minor_units(amount: Decimal, currency: str) -> bool:
    """True when `amount` needs no rounding to be expressed in minor units of `currency`."""
    return round_money(amount, currency) == amount


def format_money(amount: Decimal, currency: str) -> str:
    """`amount` rounded to `currency`'s minor units and written with exactly that many places.

    JPY 1234 -> "1234", USD 12.3 -> "12.30", KWD 1.5 -> "1.500"; never an exponent, never "-0".
    """
    rounded = round_money(amount, currency)
    if rounded.is_zero():
        rounded = rounded.copy_abs()
    return f"{rounded:f}"
