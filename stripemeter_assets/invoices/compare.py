"""Invoice reconciliation (DESIGN §5): each period counter priced on its subscription item's
Stripe price, against the invoice Stripe will bill (the preview while the period is open,
the draft during its grace) or billed (the finalized invoice's line).

Quantities are the meter's units (the push's scaled integers: floor(unit_scale × value),
plus what was carried into the period from closed ones); amounts are in the invoice
currency's major units, exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from stripemeter_assets.periods.stripe_read import InvoiceLine
from stripemeter_assets.pricing import parse_price_config, price_line
from stripemeter_assets.pricing.stripe_price import stripe_minor_exponent

OK = "ok"
INVOICE_DRIFT = "invoice_drift"
NOT_INVOICED = "not_invoiced"
NO_SUBSCRIPTION = "no_subscription"
PENDING = "pending"
# The account's Stripe was not read (no key for it): its subscriptions,
# prices and invoices are unknown, so nothing is known to be at risk either.
NOT_READ = "not_read"
STATUSES = (OK, INVOICE_DRIFT, NOT_INVOICED, NO_SUBSCRIPTION, PENDING, NOT_READ)
AT_RISK = (INVOICE_DRIFT, NOT_INVOICED, NO_SUBSCRIPTION)
NO_PRICE_CAUSE = "no subscription item on the meter's price, and no metered price to value the usage"


def not_read_cause(shadow: bool) -> str:
    key = "STRIPE_TEST_API_KEY (shadow mappings read test mode only)" if shadow else "STRIPE_API_KEY"
    return f"not read from Stripe: no {key} is configured, so its subscriptions and invoices are unknown"


@dataclass
class Row:
    tenant_id: str
    customer_ref: str
    metric: str
    subscription_item: str | None
    period_start: datetime
    period_end: datetime
    local_total: Decimal
    local_amount: Decimal | None = None
    stripe_quantity: Decimal | None = None
    stripe_amount: Decimal | None = None
    currency: str | None = None
    invoice: str | None = None
    invoice_status: str | None = None
    money_at_stake: Decimal = Decimal(0)
    status: str = OK
    cause: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def stripe_money(minor: int, currency: str) -> Decimal:
    """A Stripe amount (integer minor units) in major units."""
    return Decimal(minor).scaleb(-stripe_minor_exponent(currency.upper()))


def local_amount(price: dict[str, Any], quantity: Decimal) -> Decimal:
    """What `quantity` meter units cost on Stripe `price`, through the pricing library."""
    return price_line(parse_price_config(price, "price"), max(quantity, Decimal(0)))


def compare(row: Row, price: dict[str, Any] | None, line: InvoiceLine | None, *, in_flight: bool,
            acked_after_finalization: bool) -> Row:
    """Fills amounts, status, cause and money at stake of a counter with a subscription item."""
    if price is not None:
        row.currency = str(price["currency"]).upper()
        row.local_amount = local_amount(price, row.local_total)
    if line is None:
        row.status = PENDING
        row.cause = "no invoice line for the item yet"
        row.money_at_stake = row.local_amount or Decimal(0)
        return row
    row.currency = line.currency
    row.stripe_quantity = Decimal(line.quantity)
    row.stripe_amount = stripe_money(line.amount, line.currency)
    row.invoice, row.invoice_status = line.invoice, line.status
    row.money_at_stake = abs((row.local_amount or Decimal(0)) - row.stripe_amount)
    final = line.status not in ("preview", "draft")
    if row.stripe_quantity == row.local_total and row.money_at_stake == 0:
        row.status, row.cause = OK, f"{line.status} invoice bills the local amount"
    elif in_flight and not final:
        row.status, row.cause = PENDING, "pushes in flight; Stripe has not received them all yet"
    elif final and row.stripe_quantity < row.local_total and acked_after_finalization:
        row.status = NOT_INVOICED
        row.cause = (f"{row.local_total - row.stripe_quantity:f} units reached Stripe after invoice {line.invoice} "
                     "was finalized: on no invoice")
    elif row.stripe_quantity == row.local_total:
        row.status, row.cause = INVOICE_DRIFT, "same quantity, different amount: the price differs from the local one"
    else:
        row.status = INVOICE_DRIFT
        side = "under" if row.stripe_quantity < row.local_total else "over"
        row.cause = f"Stripe {side}-bills: {line.status} quantity {row.stripe_quantity:f} vs local {row.local_total:f}"
    return row


def not_read(row: Row, shadow: bool) -> Row:
    row.status, row.cause = NOT_READ, not_read_cause(shadow)
    return row


def no_subscription(row: Row, price: dict[str, Any] | None) -> Row:
    """A mapped customer with usage and no subscription item on the meter's price: Stripe
    records the usage and bills nobody. Money at stake is the usage on the meter's price."""
    row.status = NO_SUBSCRIPTION
    if price is None:
        row.cause = NO_PRICE_CAUSE
        return row
    row.currency = str(price["currency"]).upper()
    row.local_amount = local_amount(price, row.local_total)
    row.money_at_stake = row.local_amount
    row.cause = (f"no subscription item on the meter's price: {row.local_total:f} units "
                 f"({row.local_amount:f} {row.currency} at {price['id']}) are billed to nobody")
    return row
