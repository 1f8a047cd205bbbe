"""Backtesting a price change: what each customer would have paid under old and new prices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import Any

from .calculate import price_line
from .errors import ScenarioError
from .fields import as_mapping, child, item, read_decimal, read_str
from .models import PriceConfig, parse_price_config
from .money import EXACT, round_money

_ZERO = Decimal(0)


def backtest(
    usage_rows: Iterable[Mapping[str, Any]],
    old_prices: Mapping[str, Any],
    new_prices: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """Per-customer totals of `usage_rows` under `old_prices` and `new_prices`.

    `usage_rows` are `period_usage`-like dicts (`tenant_id`, `customer_ref`, `metric`, `value`);
    each row is one counter for one period, so each is priced as one invoice line. Prices map a
    metric to a priceConfig (native or Stripe shape); a metric a price map leaves out is not
    billed under it. Both maps must be in one and the same currency.

    Returns one dict per (tenant_id, customer_ref), sorted by them, with `old_total`,
    `new_total` and `difference` (new - old) as Decimals in whole minor units. Pre-tax, before
    commitments and credits: this compares prices, not invoices.
    """
    old = _parse_prices(old_prices, "old_prices")
    new = _parse_prices(new_prices, "new_prices")
    currency = _single_currency(old, "old_prices")
    if _single_currency(new, "new_prices") != currency:
        raise ScenarioError(
            "new_prices", f"must be in {currency} like old_prices, or totals are not comparable"
        )
    totals: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    with localcontext(EXACT):
        for index, raw_row in enumerate(usage_rows):
            path = item("usage_rows", index)
            row = as_mapping(raw_row, path)
            key = (
                read_str(row, "tenant_id", path, required=True),
                read_str(row, "customer_ref", path, required=True),
            )
            metric = read_str(row, "metric", path, required=True)
            value = read_decimal(row, "value", path, required=True)
            old_total, new_total = totals.get(key, (_ZERO, _ZERO))
            totals[key] = (old_total + _charge(old, metric, value), new_total + _charge(new, metric, value))
        return [
            {
                "tenant_id": tenant_id,
                "customer_ref": customer_ref,
                "old_total": round_money(old_total, currency),
                "new_total": round_money(new_total, currency),
                "difference": round_money(new_total - old_total, currency),
            }
            for (tenant_id, customer_ref), (old_total, new_total) in sorted(totals.items())
        ]


def _parse_prices(prices: Mapping[str, Any], path: str) -> dict[str, PriceConfig]:
    return {
        metric: parse_price_config(raw, child(path, metric))
        for metric, raw in as_mapping(prices, path).items()
    }


def _single_currency(prices: dict[str, PriceConfig], path: str) -> str:
    if not prices:
        raise ScenarioError(path, "must price at least one metric")
    currency = next(iter(prices.values())).currency
    for metric, config in prices.items():
        if config.currency != currency:
            raise ScenarioError(
                child(child(path, metric), "currency"), f"{config.currency} differs from {currency}"
            )
    return currency


def _charge(prices: dict[str, PriceConfig], metric: str, value: Decimal) -> Decimal:
    config = prices.get(metric)
    return price_line(config, value) if config is not None else _ZERO
