"""Pricing one invoice line: a quantity under a PriceConfig, computed exactly, rounded once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, localcontext

from .models import PriceConfig, Tier
from .money import EXACT, round_money

_ZERO = Decimal(0)


def exact_charge(config: PriceConfig, quantity: Decimal) -> Decimal:
    """What `quantity` units cost under `config`, exact (unrounded), min/max charges applied."""
    if quantity < 0:
        raise ValueError(f"quantity must not be negative, got {quantity}")
    with localcontext(EXACT):
        amount = _BY_MODEL[config.model](config, quantity)
        if config.minimum_charge is not None and amount < config.minimum_charge:
            amount = config.minimum_charge
        if config.maximum_charge is not None and amount > config.maximum_charge:
            amount = config.maximum_charge
    return amount


def price_line(config: PriceConfig, quantity: Decimal) -> Decimal:
    """Subtotal of one invoice line: `exact_charge` rounded half up to the currency's minor units.

    Rounding happens once per line, so sub-cent unit prices (0.008 per call) are never rounded
    unit by unit.
    """
    return round_money(exact_charge(config, quantity), config.currency)


def _flat(config: PriceConfig, quantity: Decimal) -> Decimal:
    return quantity * config.unit_price


def _package(config: PriceConfig, quantity: Decimal) -> Decimal:
    packages, remainder = divmod(quantity, config.package_size)
    if remainder and config.package_rounding == "up":
        packages += 1
    return packages * config.unit_price


def _graduated(config: PriceConfig, quantity: Decimal) -> Decimal:
    """Each unit at the price of the tier it falls in, plus the flat fee of every tier reached.

    A tier is reached once the quantity exceeds the previous tier's bound, so 0 reaches none.
    `tiered` prices the same way: its tiers have no flat fees.
    """
    total = _ZERO
    lower = _ZERO
    for tier in config.tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None or quantity < tier.up_to else tier.up_to
        total += (upper - lower) * tier.unit_price + tier.flat_price
        lower = upper
    return total


def _volume(config: PriceConfig, quantity: Decimal) -> Decimal:
    """All units at the price of the one tier the quantity falls in, plus that tier's flat fee.

    Not monotonic: crossing a bound can lower the total. Zero units fall in no tier (as in
    `_graduated`), so no flat fee is charged for no usage.
    """
    if quantity == 0:
        return _ZERO
    tier = _volume_tier(config.tiers, quantity)
    return quantity * tier.unit_price + tier.flat_price


def _volume_tier(tiers: tuple[Tier, ...], quantity: Decimal) -> Tier:
    # parse_price_config guarantees the last tier is unbounded: whatever passes the others is its.
    for tier in tiers[:-1]:
        if quantity <= tier.up_to:
            return tier
    return tiers[-1]


_BY_MODEL: dict[str, Callable[[PriceConfig, Decimal], Decimal]] = {
    "flat": _flat,
    "package": _package,
    "tiered": _graduated,
    "graduated": _graduated,
    "volume": _volume,
}
