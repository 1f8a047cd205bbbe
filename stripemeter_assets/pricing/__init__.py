"""Pricing library: exact Decimal prices, ISO 4217 minor units, Stripe price shapes, simulation.

- `parse_price_config` / `price_line`: price one metric's usage (flat, package, tiered,
  graduated, volume; minimum and maximum charges), from the native or Stripe Price shape.
- `InvoiceSimulator().simulate(scenario)`: the invoice of a scenario (DESIGN §7 `simulate`).
- `backtest`: per-customer totals of period usage under old and new prices.

Bad input raises `ScenarioError` (a ValueError) naming the field path and the reason.
"""

from .backtest import backtest
from .calculate import exact_charge, price_line
from .errors import ScenarioError
from .models import MODELS, PriceConfig, Tier, parse_price_config
from .money import MINOR_UNITS, format_money, minor_unit_exponent, round_money
from .scenario import Scenario, parse_scenario
from .simulator import Invoice, InvoiceSimulator, LineItem, simulate_invoice

__all__ = [
    "MINOR_UNITS",
    "MODELS",
    "Invoice",
    "InvoiceSimulator",
    "LineItem",
    "PriceConfig",
    "Scenario",
    "ScenarioError",
    "Tier",
    "backtest",
    "exact_charge",
    "format_money",
    "minor_unit_exponent",
    "parse_price_config",
    "parse_scenario",
    "price_line",
    "round_money",
    "simulate_invoice",
]
