"""An invoice scenario (the `simulate` input of DESIGN §7) and its validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from .errors import ScenarioError
from .fields import (
    as_mapping,
    child,
    item,
    read_currency,
    read_decimal,
    read_instant,
    read_list,
    read_str,
    reject_unknown,
)
from .models import PriceConfig, parse_price_config
from .money import fits_minor_units

_SCENARIO_FIELDS = (
    "customerId",
    "periodStart",
    "periodEnd",
    "currency",
    "usageItems",
    "commitments",
    "credits",
    "taxRate",
)


@dataclass(frozen=True, slots=True)
class UsageItem:
    """Usage of one metric in the period and how it is priced."""

    metric: str
    quantity: Decimal
    price: PriceConfig


@dataclass(frozen=True, slots=True)
class Commitment:
    """Prepaid amount valid over [start, end); `applied` of it is already drawn down."""

    amount: Decimal
    start: datetime
    end: datetime
    applied: Decimal

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.applied


@dataclass(frozen=True, slots=True)
class Credit:
    """Credit balance; unusable on an invoice whose period ends after `expires_at`."""

    amount: Decimal
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario: one currency, a billing period [period_start, period_end)."""

    customer_id: str | None
    period_start: datetime
    period_end: datetime
    currency: str
    items: tuple[UsageItem, ...]
    commitments: tuple[Commitment, ...]
    credits: tuple[Credit, ...]
    tax_rate: Decimal


def parse_scenario(raw: Any) -> Scenario:
    """A Scenario from its JSON shape; raises ScenarioError naming the bad field and why.

    Field paths are relative to the scenario: `usageItems[1].priceConfig.tiers[2].upTo`.
    """
    if isinstance(raw, Scenario):
        return raw
    obj = as_mapping(raw, "")
    reject_unknown(obj, _SCENARIO_FIELDS, "")
    period_start = read_instant(obj, "periodStart", "", required=True)
    period_end = read_instant(obj, "periodEnd", "", required=True)
    if period_end <= period_start:
        raise ScenarioError("periodEnd", "must be after periodStart")
    items = tuple(
        _usage_item(raw_item, item("usageItems", i))
        for i, raw_item in enumerate(read_list(obj, "usageItems", "", required=True))
    )
    currency = _invoice_currency(obj, items)
    return Scenario(
        customer_id=read_str(obj, "customerId", "", required=False),
        period_start=period_start,
        period_end=period_end,
        currency=currency,
        items=items,
        commitments=tuple(
            _commitment(raw_commitment, item("commitments", i), currency)
            for i, raw_commitment in enumerate(read_list(obj, "commitments", "", required=False))
        ),
        credits=tuple(
            _credit(raw_credit, item("credits", i), currency)
            for i, raw_credit in enumerate(read_list(obj, "credits", "", required=False))
        ),
        tax_rate=read_decimal(obj, "taxRate", "", required=False) or Decimal(0),
    )


def _usage_item(raw: Any, path: str) -> UsageItem:
    obj = as_mapping(raw, path)
    reject_unknown(obj, ("metric", "quantity", "priceConfig"), path)
    metric = read_str(obj, "metric", path, required=True)
    quantity = read_decimal(obj, "quantity", path, required=True)
    if obj.get("priceConfig") is None:
        raise ScenarioError(child(path, "priceConfig"), "missing")
    return UsageItem(metric, quantity, parse_price_config(obj["priceConfig"], child(path, "priceConfig")))


def _invoice_currency(obj: Mapping[str, Any], items: tuple[UsageItem, ...]) -> str:
    """The one currency of the invoice: the top-level `currency`, else the first item's."""
    declared = read_currency(obj, "currency", "", required=False)
    if declared is None and not items:
        raise ScenarioError("currency", "missing (needed when there are no usage items)")
    currency = declared or items[0].price.currency
    source = "currency" if declared else "usageItems[0].priceConfig.currency"
    for index, usage in enumerate(items):
        if usage.price.currency != currency:
            raise ScenarioError(
                f"usageItems[{index}].priceConfig.currency",
                f"{usage.price.currency} differs from {currency} ({source}); an invoice has one currency",
            )
    return currency


def _commitment(raw: Any, path: str, currency: str) -> Commitment:
    obj = as_mapping(raw, path)
    reject_unknown(obj, ("amount", "startDate", "endDate", "applied"), path)
    amount = _money(obj, "amount", path, currency, required=True)
    start = read_instant(obj, "startDate", path, required=True)
    end = read_instant(obj, "endDate", path, required=True)
    if end <= start:
        raise ScenarioError(child(path, "endDate"), "must be after startDate")
    applied = _money(obj, "applied", path, currency, required=False) or Decimal(0)
    if applied > amount:
        raise ScenarioError(child(path, "applied"), f"{applied} exceeds the commitment amount {amount}")
    return Commitment(amount, start, end, applied)


def _credit(raw: Any, path: str, currency: str) -> Credit:
    obj = as_mapping(raw, path)
    reject_unknown(obj, ("amount", "expiresAt"), path)
    return Credit(
        amount=_money(obj, "amount", path, currency, required=True),
        expires_at=read_instant(obj, "expiresAt", path, required=False),
    )


def _money(obj: Mapping[str, Any], key: str, path: str, currency: str, *, required: bool) -> Decimal | None:
    """An amount already in `currency`'s minor units: a credit of 0.005 USD cannot be drawn down."""
    amount = read_decimal(obj, key, path, required=required)
    if amount is not None and not fits_minor_units(amount, currency):
        raise ScenarioError(child(path, key), f"{amount} has more decimal places than {currency} allows")
    return amount
