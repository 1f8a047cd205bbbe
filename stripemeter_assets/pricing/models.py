"""Price configs (how one metric is priced) and their parsing from the native or Stripe shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .errors import ScenarioError
from .fields import as_mapping, child, item, read_currency, read_decimal, read_list, read_str, reject_unknown
from .stripe_price import is_stripe_price, stripe_price_to_native

MODELS = ("flat", "package", "tiered", "graduated", "volume")

_ZERO = Decimal(0)
_COMMON_FIELDS = ("model", "currency", "minimumCharge", "maximumCharge")
_MODEL_FIELDS = {
    "flat": ("unitPrice",),
    "package": ("unitPrice", "packageSize", "packageRounding"),
    "tiered": ("tiers",),
    "graduated": ("tiers",),
    "volume": ("tiers",),
}
_ALL_FIELDS = frozenset(_COMMON_FIELDS).union(*_MODEL_FIELDS.values())


@dataclass(frozen=True, slots=True)
class Tier:
    """One tier: the units above the previous tier's bound up to and including `up_to`.

    `up_to` None is the unbounded last tier. `flat_price` is charged once when the tier is
    reached (graduated) or when the quantity falls in it (volume).
    """

    up_to: Decimal | None
    unit_price: Decimal
    flat_price: Decimal = _ZERO


@dataclass(frozen=True, slots=True)
class PriceConfig:
    """How one metric is priced, amounts in the currency's major units.

    Build it with `parse_price_config`, which enforces what pricing relies on: non-negative
    amounts, a positive package size, tiers strictly increasing with an unbounded last one.
    """

    model: str
    currency: str
    unit_price: Decimal | None = None
    package_size: Decimal | None = None
    package_rounding: str = "up"
    tiers: tuple[Tier, ...] = ()
    minimum_charge: Decimal | None = None
    maximum_charge: Decimal | None = None


def parse_price_config(raw: Any, path: str = "priceConfig") -> PriceConfig:
    """A PriceConfig from a native priceConfig or a Stripe Price object (or one already parsed).

    Raises ScenarioError naming the field under `path` that is wrong and why.
    """
    if isinstance(raw, PriceConfig):
        return raw
    obj = as_mapping(raw, path)
    if is_stripe_price(obj):
        obj = stripe_price_to_native(obj, path)
    model = read_str(obj, "model", path, required=True)
    if model not in MODELS:
        raise ScenarioError(
            child(path, "model"), f"unknown model {model!r} (expected one of {', '.join(MODELS)})"
        )
    _reject_fields_of_other_models(obj, model, path)
    currency = read_currency(obj, "currency", path, required=True)
    minimum = read_decimal(obj, "minimumCharge", path, required=False)
    maximum = read_decimal(obj, "maximumCharge", path, required=False)
    if minimum is not None and maximum is not None and maximum < minimum:
        raise ScenarioError(child(path, "maximumCharge"), f"{maximum} is less than minimumCharge {minimum}")
    limits = {"minimum_charge": minimum, "maximum_charge": maximum}
    if model == "flat":
        return PriceConfig(
            model, currency, unit_price=read_decimal(obj, "unitPrice", path, required=True), **limits
        )
    if model == "package":
        rounding = read_str(obj, "packageRounding", path, required=False) or "up"
        if rounding not in ("up", "down"):
            raise ScenarioError(child(path, "packageRounding"), f"must be 'up' or 'down', got {rounding!r}")
        return PriceConfig(
            model,
            currency,
            unit_price=read_decimal(obj, "unitPrice", path, required=True),
            package_size=read_decimal(obj, "packageSize", path, required=True, positive=True),
            package_rounding=rounding,
            **limits,
        )
    return PriceConfig(model, currency, tiers=_parse_tiers(obj, path, model), **limits)


def _reject_fields_of_other_models(obj: Mapping[str, Any], model: str, path: str) -> None:
    allowed = _COMMON_FIELDS + _MODEL_FIELDS[model]
    for key in obj:
        if key in _ALL_FIELDS and key not in allowed:
            raise ScenarioError(child(path, key), f"not used by model {model!r}")
    reject_unknown(obj, allowed, path)


def _parse_tiers(obj: Mapping[str, Any], path: str, model: str) -> tuple[Tier, ...]:
    tiers_path = child(path, "tiers")
    raw_tiers = read_list(obj, "tiers", path, required=True)
    if not raw_tiers:
        raise ScenarioError(tiers_path, "must have at least one tier")
    tiers = []
    previous = _ZERO
    for index, raw_tier in enumerate(raw_tiers):
        tier_path = item(tiers_path, index)
        tier = as_mapping(raw_tier, tier_path)
        if model == "tiered" and "flatPrice" in tier:
            # `tiered` is the original StripeMeter's graduated-without-fees; silently dropping the
            # fee would under-bill.
            raise ScenarioError(child(tier_path, "flatPrice"), "not used by model 'tiered' (use 'graduated')")
        reject_unknown(tier, ("upTo", "unitPrice", "flatPrice"), tier_path)
        up_to = read_decimal(tier, "upTo", tier_path, required=False)
        is_last = index == len(raw_tiers) - 1
        if up_to is None and not is_last:
            raise ScenarioError(
                child(tier_path, "upTo"), "missing; only the last tier is unbounded (upTo: null)"
            )
        if up_to is not None and is_last:
            raise ScenarioError(
                child(tier_path, "upTo"), f"the last tier must be unbounded (upTo: null), got {up_to}"
            )
        if up_to is not None and up_to <= previous:
            raise ScenarioError(
                child(tier_path, "upTo"), f"tiers not increasing: {up_to} is not greater than {previous}"
            )
        unit_price = read_decimal(tier, "unitPrice", tier_path, required=model == "tiered")
        flat_price = read_decimal(tier, "flatPrice", tier_path, required=False)
        if unit_price is None and flat_price is None:
            raise ScenarioError(
                child(tier_path, "unitPrice"), "missing (a tier needs unitPrice, flatPrice or both)"
            )
        tiers.append(Tier(up_to, unit_price if unit_price is not None else _ZERO, flat_price or _ZERO))
        previous = up_to if up_to is not None else previous
    return tuple(tiers)
