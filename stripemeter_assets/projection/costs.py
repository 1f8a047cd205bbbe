"""Cost projection and pricing backtests on period counters (DESIGN §6): pure logic.

- `PriceBook` / `parse_price_book`: the `prices:` config (metric -> priceConfig in the pricing
  library's native or Stripe shape) with optional `prices_by_tenant: {tenant: {metric: ...}}`
  overrides, parsed once so a bad price fails with the path of the offending field.
- `elapsed_fraction`, `project_usage`, `project_rows`: the open period's projection per counter.
- `backtest_period`: per-customer invoice totals of one period under current and candidate prices.

Everything is exact: elapsed time is a `Fraction` of microseconds, projected usage is rounded once
(half away from zero) to the counters' 9 decimal places, money once to the currency's minor units
by `price_line`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from typing import Any

from stripemeter_assets.settings import month_start, naive, next_month, utc
from stripemeter_assets.settings import Config
from stripemeter_assets.pricing import PriceConfig, ScenarioError, backtest, parse_price_config, price_line

# Below this share of the period no projection is shown (DESIGN §6).
MIN_ELAPSED = Fraction(1, 10)
# Scale of counters (DECIMAL(38, 9)) and of the projected usage written next to them.
USAGE_PLACES = 9
# Scale of `cost_projection.elapsed_fraction` (display only; projections use the exact fraction).
FRACTION_PLACES = 6
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


def elapsed_fraction(now: datetime, start: datetime, end: datetime) -> Fraction:
    """(now - start) / (end - start), exact in microseconds, clamped to [0, 1]."""
    now, start, end = utc(now), utc(start), utc(end)
    total = _micros(end - start)
    if total <= 0:
        raise ValueError(f"period end {end} is not after its start {start}")
    return min(Fraction(1), max(Fraction(0), Fraction(_micros(now - start), total)))


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


def project_rows(
    usage_rows: Iterable[Mapping[str, Any]],
    prices: PriceBook,
    *,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    item_prices: Mapping[tuple[str, str, str], tuple[PriceConfig, int]] | None = None,
) -> list[dict[str, Any]]:
    """One `cost_projection` row per `period_usage` row of the period.

    `usage_rows` carry `tenant_id`, `customer_ref`, `metric`, `aggregation` and `value`. Costs
    are `price_line` of usage to date and of projected usage under the customer's price: the
    Stripe price of its subscription item when `item_prices` has one for (tenant, customer,
    metric), applied as Stripe does to the meter's units (floor(unit_scale × usage)), else the
    tenant's price for the metric from the config; an unpriced metric (or negative usage) keeps
    its usage and gets NULL costs, `priced` false for the former, and a `note` saying why.
    """
    fraction = elapsed_fraction(now, period_start, period_end)
    shown = round_fraction(fraction, FRACTION_PLACES)
    rows = []
    for usage in usage_rows:
        to_date = Decimal(usage["value"])
        projected = project_usage(usage["aggregation"], to_date, fraction)
        item = (item_prices or {}).get((usage["tenant_id"], usage["customer_ref"], usage["metric"]))
        config = item[0] if item else prices.price(usage["tenant_id"], usage["metric"])

        def units(quantity: Decimal, scale: int | None = item[1] if item else None) -> Decimal:
            # A Stripe price bills the meter's whole units.
            return quantity if scale is None else (quantity * scale).to_integral_value(rounding=ROUND_FLOOR)

        notes = []
        if projected is None:
            notes.append(NOTE_TOO_EARLY)
        elif abs(projected) >= USAGE_LIMIT:
            projected = None
            notes.append(NOTE_TOO_LARGE)
        cost_to_date = projected_cost = None
        if config is None:
            notes.append(NOTE_UNPRICED)
        elif to_date < 0 or (projected is not None and projected < 0):
            notes.append(NOTE_NEGATIVE)
        else:
            cost_to_date = price_line(config, units(to_date))
            projected_cost = price_line(config, units(projected)) if projected is not None else None
        rows.append({
            "tenant_id": usage["tenant_id"],
            "customer_ref": usage["customer_ref"],
            "metric": usage["metric"],
            "period_start": naive(period_start),
            "period_end": naive(period_end),
            "aggregation": usage["aggregation"],
            "usage_to_date": to_date,
            "elapsed_fraction": shown,
            "projected_usage": projected,
            # Until the period is over every projection is an extrapolation (or, for max/last,
            # a value that may still rise).
            "is_estimate": projected is not None and fraction < 1,
            "priced": config is not None,
            "currency": config.currency if config is not None else None,
            "cost_to_date": cost_to_date,
            "projected_cost": projected_cost,
            "note": "; ".join(notes) or None,
            "computed_at": naive(now),
        })
    return rows


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


def _micros(delta: Any) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
