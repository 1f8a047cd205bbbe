"""Cost projection and pricing backtests on period counters (DESIGN §6): pure logic.

- `PriceBook` / `parse_price_book`: the `prices:` config (metric -> priceConfig in the pricing
  library's native or Stripe shape) with optional `prices_by_tenant: {tenant: {metric: ...}}`
  overrides, parsed once so a bad price fails with the path of the offending field.
- `project_usage`, `round_fraction`: a counter's projection, exactly (the rules the set-based
  `project.project_periods` applies in SQL, and the code it falls back on out of HUGEINT's range).
- `backtest_period`: per-customer invoice totals of one period under current and candidate prices.

Everything is exact: elapsed time is a `Fraction` of microseconds, projected usage is rounded once
(half away from zero) to the counters' 9 decimal places, money once to the currency's minor units
by `price_line`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from stripemeter_assets.settings import month_start, next_month
from stripemeter_assets.settings import Config
from stripemeter_assets.pricing import PriceConfig, ScenarioError, backtest, parse_price_config

# Below this share of the period no projection is shown (DESIGN §6).
MIN_ELAPSED = Fraction(1, 10)
# Scale of counters (DECIMAL(38, 9)) and of the projected usage written next to them.
USAGE_PLACES = 9
# Aggregations whose period total grows with time; max/last project as their current value.
ACCUMULATING = ("sum", "count")

NOTE_UNPRICED = "no price configured for this metric"
NOTE_TOO_EARLY = "no projection before 10 % of the period has elapsed"
NOTE_NEGATIVE = "negative usage is not priced"
NOTE_TOO_LARGE = "the projected usage exceeds DECIMAL(38,9)"
# DECIMAL(38,9), the type of every quantity, holds magnitudes below 1e29.
USAGE_LIMIT = Decimal("1e29")


@dataclass(frozen=True)
class PriceBook:
    """Prices per metric, with per-tenant overrides (a None override leaves the metric unpriced)."""

    default: dict[str, PriceConfig] = field(default_factory=dict)
    by_tenant: dict[str, dict[str, PriceConfig | None]] = field(default_factory=dict)

    def price(self, tenant_id: str, metric: str) -> PriceConfig | None:
        overrides = self.by_tenant.get(tenant_id, {})
        if metric in overrides:
            return overrides[metric]
        return self.default.get(metric)

    def for_tenant(self, tenant_id: str) -> dict[str, PriceConfig]:
        """Every metric priced for `tenant_id`: the defaults with its overrides applied."""
        merged: dict[str, PriceConfig | None] = {**self.default, **self.by_tenant.get(tenant_id, {})}
        return {metric: config for metric, config in merged.items() if config is not None}

    def metrics(self) -> set[str]:
        return set(self.default).union(*(set(m) for m in self.by_tenant.values()))

    def __bool__(self) -> bool:
        return bool(self.default) or any(self.by_tenant.values())


def config_price_book(config: Config) -> PriceBook:
    """The config's `prices` and `prices_by_tenant` sections as a PriceBook."""
    return parse_price_book({"prices": config.prices, "prices_by_tenant": config.prices_by_tenant})


def parse_price_book(raw: Mapping[str, Any] | None) -> PriceBook:
    """The `prices` and `prices_by_tenant` keys of a config or price file as a PriceBook.

    Raises ScenarioError naming the field, e.g. `prices.api_calls.tiers[1].upTo`.
    """
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise ScenarioError("prices", "the price file must be a mapping")
    default = _parse_prices(raw.get("prices"), "prices", allow_none=False)
    tenants = raw.get("prices_by_tenant") or {}
    if not isinstance(tenants, Mapping):
        raise ScenarioError("prices_by_tenant", "must be a mapping of tenant -> {metric: priceConfig}")
    by_tenant = {
        str(tenant): _parse_prices(prices, f"prices_by_tenant.{tenant}", allow_none=True)
        for tenant, prices in tenants.items()
    }
    return PriceBook(default, by_tenant)


def _parse_prices(raw: Any, path: str, *, allow_none: bool) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ScenarioError(path, "must be a mapping of metric -> priceConfig")
    parsed: dict[str, Any] = {}
    for metric, config in raw.items():
        if config is None and allow_none:
            parsed[str(metric)] = None
        else:
            parsed[str(metric)] = parse_price_config(config, f"{path}.{metric}")
    return parsed


def project_usage(aggregation: str, to_date: Decimal, fraction: Fraction) -> Decimal | None:
    """The period's projected total: None before 10 % has elapsed; sum/count extrapolated
    linearly (`to_date / fraction`, rounded to 9 places); max/last their current value."""
    if fraction < MIN_ELAPSED:
        return None
    if aggregation not in ACCUMULATING:
        return to_date
    return round_fraction(Fraction(to_date) / fraction, USAGE_PLACES)


def round_fraction(value: Fraction, places: int) -> Decimal:
    """`value` rounded half away from zero to `places` decimal places, exactly."""
    scaled = abs(value) * 10**places
    units = int(scaled + Fraction(1, 2))  # floor(x + 1/2) for x >= 0
    return Decimal(f"{'-' if value < 0 and units else ''}{units}E-{places}")  # exact, any size


def backtest_period(
    conn: Any,
    period_start: datetime,
    candidate_prices: PriceBook | Mapping[str, Any],
    current_prices: PriceBook | Mapping[str, Any],
    *,
    tenant: str | None = None,
) -> list[dict[str, Any]]:
    """Per-customer invoice totals of the billing periods starting in the calendar month of
    `period_start` (each customer's own period) under current and candidate prices, through
    the pricing library's `backtest`.

    Prices are a PriceBook or a plain {metric: priceConfig} map (applied to every tenant).
    Returns dicts with `tenant_id`, `customer_ref`, `currency`, `old_total`, `new_total` and
    `difference` (new - old), sorted by tenant and customer. Only counters of metrics priced on
    either side are read (an unpriced metric costs nothing on both), so a customer with no
    priced usage is not listed. Pre-tax, before commitments and credits.
    """
    from stripemeter_assets.warehouse import query

    old_book = _as_book(current_prices)
    new_book = _as_book(candidate_prices)
    month = month_start(period_start)
    usage = query(conn, "projection/backtest_usage.sql", start=month, end=next_month(month), tenant=tenant)
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for row in usage:
        by_tenant.setdefault(row["tenant_id"], []).append(row)
    results = []
    for tenant_id, rows in sorted(by_tenant.items()):
        old, new = old_book.for_tenant(tenant_id), new_book.for_tenant(tenant_id)
        priced = set(old) | set(new)
        rows = [r for r in rows if r["metric"] in priced]
        if not rows:
            continue
        currency = _currency(old, new, tenant_id)
        for line in backtest(rows, old or _zero_prices(new), new or _zero_prices(old)):
            results.append({**line, "currency": currency})
    return results


def _as_book(prices: PriceBook | Mapping[str, Any]) -> PriceBook:
    if isinstance(prices, PriceBook):
        return prices
    if "prices" in prices or "prices_by_tenant" in prices:
        return parse_price_book(prices)
    return parse_price_book({"prices": prices})


def _zero_prices(other: Mapping[str, PriceConfig]) -> dict[str, PriceConfig]:
    # The library needs both sides priced in one currency; a side that prices nothing for this
    # tenant bills zero.
    config = next(iter(other.values()))
    return {"__none__": PriceConfig("flat", config.currency, unit_price=Decimal(0))}


def _currency(old: Mapping[str, PriceConfig], new: Mapping[str, PriceConfig], tenant_id: str) -> str:
    currencies = {c.currency for c in (*old.values(), *new.values())}
    if len(currencies) != 1:
        raise ScenarioError(f"prices for tenant {tenant_id}",
                            f"mix currencies {', '.join(sorted(currencies))}; totals are not comparable")
    return currencies.pop()
