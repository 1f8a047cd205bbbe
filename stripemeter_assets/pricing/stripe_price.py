"""Stripe's Price object accepted as a priceConfig, translated to the native shape.

A priceConfig with `billing_scheme` is a Stripe Price (as returned by the API, or as passed to
`Price.create`); its other fields (`id`, `product`, `recurring`, `metadata`, ...) are ignored.
The mapping:

- `per_unit`                                    -> `flat`
- `per_unit` + `transform_quantity`             -> `package` (`divide_by`, `round` up/down)
- `tiered` + `tiers_mode: graduated` / `volume` -> `graduated` / `volume`

Stripe amounts are integers (or `*_decimal` strings) in the currency's minor units; they are
converted exactly to the major units the native shape uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .errors import ScenarioError
from .fields import as_mapping, child, item, read_currency, read_decimal, read_list, read_str, to_decimal
from .money import EXACT, minor_unit_exponent

# Where Stripe's API minor unit differs from ISO 4217: Stripe keeps ISK two-decimal for backwards
# compatibility (100 = 1 króna) and treats MGA as zero-decimal.
_STRIPE_EXPONENT = {"ISK": 2, "MGA": 0}


def stripe_minor_exponent(currency: str) -> int:
    """Decimal places of Stripe's integer amounts in `currency` (upper-case ISO 4217)."""
    return _STRIPE_EXPONENT.get(currency, minor_unit_exponent(currency))


def is_stripe_price(raw: Mapping[str, Any]) -> bool:
    """True when a priceConfig is in Stripe's Price shape rather than the native one."""
    return "billing_scheme" in raw


def stripe_price_to_native(raw: Mapping[str, Any], path: str) -> dict[str, Any]:
    """The native priceConfig equivalent to Stripe Price `raw`; errors name Stripe's fields."""
    currency = read_currency(raw, "currency", path, required=True)
    scheme = raw.get("billing_scheme")
    if scheme == "per_unit":
        return _per_unit(raw, path, currency)
    if scheme == "tiered":
        return _tiered(raw, path, currency)
    raise ScenarioError(child(path, "billing_scheme"), f"must be 'per_unit' or 'tiered', got {scheme!r}")


def _per_unit(raw: Mapping[str, Any], path: str, currency: str) -> dict[str, Any]:
    unit_price = _amount(raw, "unit_amount", path, currency)
    if unit_price is None:
        raise ScenarioError(child(path, "unit_amount"), "missing (or unit_amount_decimal)")
    if raw.get("transform_quantity") is None:
        return {"model": "flat", "currency": currency, "unitPrice": unit_price}
    transform_path = child(path, "transform_quantity")
    transform = as_mapping(raw["transform_quantity"], transform_path)
    divide_by = read_decimal(transform, "divide_by", transform_path, required=True, positive=True)
    if divide_by != divide_by.to_integral_value():
        raise ScenarioError(child(transform_path, "divide_by"), f"must be a whole number, got {divide_by}")
    rounding = read_str(transform, "round", transform_path, required=True)
    if rounding not in ("up", "down"):
        raise ScenarioError(child(transform_path, "round"), f"must be 'up' or 'down', got {rounding!r}")
    return {
        "model": "package",
        "currency": currency,
        "unitPrice": unit_price,
        "packageSize": divide_by,
        "packageRounding": rounding,
    }


def _tiered(raw: Mapping[str, Any], path: str, currency: str) -> dict[str, Any]:
    if raw.get("transform_quantity") is not None:
        raise ScenarioError(child(path, "transform_quantity"), "Stripe does not allow it on tiered prices")
    mode = read_str(raw, "tiers_mode", path, required=True)
    if mode not in ("graduated", "volume"):
        raise ScenarioError(child(path, "tiers_mode"), f"must be 'graduated' or 'volume', got {mode!r}")
    tiers_path = child(path, "tiers")
    if raw.get("tiers") is None:
        # The API leaves `tiers` out of a Price unless asked to expand it.
        raise ScenarioError(tiers_path, "missing (retrieve the price with expand=['tiers'])")
    raw_tiers = read_list(raw, "tiers", path, required=True)
    if not raw_tiers:
        raise ScenarioError(tiers_path, "must have at least one tier")
    tiers = []
    previous = Decimal(0)
    for index, raw_tier in enumerate(raw_tiers):
        tier_path = item(tiers_path, index)
        tier = as_mapping(raw_tier, tier_path)
        up_to = _up_to(tier, tier_path, is_last=index == len(raw_tiers) - 1, previous=previous)
        unit_price = _amount(tier, "unit_amount", tier_path, currency)
        flat_price = _amount(tier, "flat_amount", tier_path, currency)
        if unit_price is None and flat_price is None:
            raise ScenarioError(
                child(tier_path, "unit_amount"), "missing (a tier needs unit_amount or flat_amount)"
            )
        tiers.append(
            {
                "upTo": up_to,
                "unitPrice": unit_price if unit_price is not None else Decimal(0),
                "flatPrice": flat_price if flat_price is not None else Decimal(0),
            }
        )
        previous = up_to if up_to is not None else previous
    return {"model": mode, "currency": currency, "tiers": tiers}


def _up_to(tier: Mapping[str, Any], path: str, *, is_last: bool, previous: Decimal) -> Decimal | None:
    """A tier's inclusive bound; None for the last tier, written "inf" (create) or null (API)."""
    field = child(path, "up_to")
    value = tier.get("up_to")
    if value is None or value == "inf":
        if not is_last:
            raise ScenarioError(field, "only the last tier may be unbounded ('inf')")
        return None
    if is_last:
        raise ScenarioError(field, f"the last tier must be unbounded ('inf'), got {value}")
    bound = to_decimal(value, field)
    if bound != bound.to_integral_value():
        raise ScenarioError(field, f"must be a whole number or 'inf', got {bound}")
    if bound <= previous:
        raise ScenarioError(field, f"tiers not increasing: {bound} is not greater than {previous}")
    return bound


def _amount(obj: Mapping[str, Any], key: str, path: str, currency: str) -> Decimal | None:
    """Stripe amount `key` / `key_decimal` (minor units) in major units; None if neither is set.

    The API returns both forms of the same amount; they must agree.
    """
    whole = read_decimal(obj, key, path, required=False)
    precise = read_decimal(obj, f"{key}_decimal", path, required=False)
    if whole is not None and whole != whole.to_integral_value():
        raise ScenarioError(child(path, key), f"must be a whole number of minor units, got {whole}")
    if whole is not None and precise is not None and whole != precise:
        raise ScenarioError(child(path, f"{key}_decimal"), f"{precise} disagrees with {key} {whole}")
    amount = precise if precise is not None else whole
    if amount is None:
        return None
    return amount.scaleb(-stripe_minor_exponent(currency), context=EXACT)
