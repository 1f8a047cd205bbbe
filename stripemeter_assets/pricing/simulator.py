"""The invoice simulator: prices a scenario's usage, draws down commitments and credits, adds tax."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import partial
from typing import Any

from .calculate import price_line
from .money import EXACT, format_money, round_money
from .scenario import Scenario, parse_scenario

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class LineItem:
    """One priced usage item; `subtotal` is in whole minor units."""

    metric: str
    quantity: Decimal
    subtotal: Decimal


@dataclass(frozen=True, slots=True)
class Invoice:
    """A simulated invoice. Money is in whole minor units of `currency`.

    `credits` is everything deducted before tax: the commitment drawdown plus the credits
    applied, so `subtotal - credits` is what tax is charged on and `total` is that plus `tax`.
    """

    currency: str
    line_items: tuple[LineItem, ...]
    subtotal: Decimal
    credits: Decimal
    tax: Decimal
    total: Decimal

    def to_json(self) -> dict[str, Any]:
        """The invoice as DESIGN §7 prints it: money as strings with the currency's places,
        quantities as plain decimal strings (exact; a JSON number would invite float parsing).
        """
        money = partial(format_money, currency=self.currency)
        return {
            "lineItems": [
                {"metric": line.metric, "quantity": _plain(line.quantity), "subtotal": money(line.subtotal)}
                for line in self.line_items
            ],
            "subtotal": money(self.subtotal),
            "credits": money(self.credits),
            "tax": money(self.tax),
            "total": money(self.total),
            "currency": self.currency,
        }


class InvoiceSimulator:
    """The original StripeMeter's InvoiceSimulator: `simulate(scenario)` -> invoice JSON."""

    def simulate(self, scenario: Any) -> dict[str, Any]:
        """Invoice for `scenario` (its JSON shape, or a parsed Scenario) as a JSON-ready dict.

        Raises ScenarioError naming the offending field when the scenario is invalid.
        """
        return simulate_invoice(parse_scenario(scenario)).to_json()


def simulate_invoice(scenario: Scenario) -> Invoice:
    """Invoice for a validated scenario.

    Order: lines are priced and rounded one by one; their sum is drawn down first by every
    commitment whose [startDate, endDate) overlaps the period (up to what remains of it), then by
    every credit not expired before the period ends; tax is charged on what is left.
    """
    lines = tuple(LineItem(u.metric, u.quantity, price_line(u.price, u.quantity)) for u in scenario.items)
    with localcontext(EXACT):
        subtotal = sum((line.subtotal for line in lines), _ZERO)
        # Each deduction takes at most what is left, so the taxable balance never goes below 0.
        balance = subtotal
        for commitment in scenario.commitments:
            if commitment.start < scenario.period_end and commitment.end > scenario.period_start:
                balance -= min(balance, commitment.remaining)
        for credit in scenario.credits:
            if credit.expires_at is None or credit.expires_at >= scenario.period_end:
                balance -= min(balance, credit.amount)
        tax = round_money(balance * scenario.tax_rate.scaleb(-2), scenario.currency)
        return Invoice(
            currency=scenario.currency,
            line_items=lines,
            subtotal=subtotal,
            credits=subtotal - balance,
            tax=tax,
            total=balance + tax,
        )


def _plain(number: Decimal) -> str:
    """`number` without exponent or trailing fractional zeros: 25000, 12.5, 0."""
    if number.is_zero():
        return "0"
    return f"{number.normalize(EXACT):f}"
