"""The emulator's Stripe Billing: products, metered prices, subscriptions, invoices.

Only what usage-based billing on Billing Meters needs, in Stripe's shapes (API reference of
products, prices, subscriptions, subscription items and invoices):

- A metered price has ``recurring.usage_type = metered`` and ``recurring.meter``; it is
  ``per_unit`` (``unit_amount`` or ``unit_amount_decimal``, optional ``transform_quantity``)
  or ``tiered`` (``tiers_mode`` graduated or volume, tiers with ``unit_amount[_decimal]`` and
  ``flat_amount[_decimal]``, inclusive ``up_to``, the last ``inf``). ``tiers`` is only in a
  response when expanded: https://docs.stripe.com/api/prices/object#price_object-tiers
- A subscription's periods follow its ``billing_cycle_anchor`` and the price's interval
  (day, week, month, year × ``interval_count``); a monthly anchor on the 31st bills on the
  last day of shorter months: https://docs.stripe.com/billing/subscriptions/billing-cycle.
  Periods live on the items (``current_period_start``/``current_period_end``, moved there
  from the subscription in API 2025-03-31.basil).
- At each period end Stripe creates a draft invoice with one line per metered item; it stays
  a draft for the account's finalization grace period (default 1 h, at most 72 h), during
  which usage reported for the period is still added; at finalization the quantity is fixed,
  and usage received later is on no invoice:
  https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period.
  Stripe has no API for that setting (it is an Invoice settings page in the Dashboard), so
  the emulator sets it through a hook.
- ``invoices.create_preview`` shows the invoice of the current, still open period.

Amounts are integers in the currency's minor units; a line is computed exactly from the
``*_decimal`` amounts and rounded half up once, at the line.

The period roll-over is lazy: every call first brings subscriptions and invoices up to the
emulator's clock, so a frozen clock moved forward by a hook behaves like time passing.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from . import errors
from .state import _aggregate, _check_params, _int_param, _opt_str, _req_str, _sub, new_id, paginate

if TYPE_CHECKING:
    from .state import EmulatorState, MeterEvent, ScopeStore

INTERVALS = ("day", "week", "month", "year")
DEFAULT_GRACE_HOURS = 1
MAX_GRACE_HOURS = 72
# Stripe caps interval_count at one year's worth of intervals (API reference, prices.create).
MAX_INTERVAL_COUNT = {"day": 365, "week": 52, "month": 12, "year": 1}
_EMBEDDED_LINES = 10  # an invoice embeds its first 10 lines, like any Stripe sub-list


def _decimal(raw: Any, param: str) -> Decimal:
    try:
        value = Decimal(str(raw))
    except ArithmeticError:
        raise errors.invalid(f"Invalid decimal: {raw!r}", param=param) from None
    if not value.is_finite() or value < 0:
        raise errors.invalid(f"Invalid decimal: {raw!r}", param=param)
    return value


def _amount(obj: dict[str, Any], key: str, param: str) -> Decimal | None:
    """``key`` (integer) or ``key_decimal`` (at most 12 decimal places); never both."""
    whole, precise = obj.get(key), obj.get(f"{key}_decimal")
    if whole not in (None, "") and precise not in (None, ""):
        raise errors.invalid(f"You may only specify one of these parameters: {key}, {key}_decimal.", param=param)
    if whole not in (None, ""):
        return Decimal(_int_param(whole, f"{param}{key}"))
    if precise not in (None, ""):
        value = _decimal(precise, f"{param}{key}_decimal")
        if -value.as_tuple().exponent > 12:  # type: ignore[operator]
            raise errors.invalid("Invalid decimal: at most 12 decimal places.", param=f"{param}{key}_decimal")
        return value
    return None


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _whole(value: Decimal | None) -> int | None:
    return None if value is None or value != value.to_integral_value() else int(value)


# ---------------------------------------------------------------- objects


@dataclass
class Product:
    id: str
    name: str
    created: int
    livemode: bool

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "product", "active": True, "created": self.created,
                "livemode": self.livemode, "name": self.name, "metadata": {}}


@dataclass
class PriceTier:
    up_to: int | None
    unit_amount: Decimal | None
    flat_amount: Decimal | None

    def to_json(self) -> dict[str, Any]:
        return {
            "flat_amount": _whole(self.flat_amount),
            "flat_amount_decimal": None if self.flat_amount is None else _plain(self.flat_amount),
            "unit_amount": _whole(self.unit_amount),
            "unit_amount_decimal": None if self.unit_amount is None else _plain(self.unit_amount),
            "up_to": self.up_to,
        }


@dataclass
class Price:
    id: str
    product: str
    currency: str
    created: int
    livemode: bool
    interval: str
    interval_count: int
    meter: str | None
    usage_type: str
    billing_scheme: str
    unit_amount: Decimal | None = None
    tiers_mode: str | None = None
    tiers: list[PriceTier] = field(default_factory=list)
    divide_by: int | None = None
    round: str | None = None
    nickname: str | None = None

    def to_json(self, expand_tiers: bool = False) -> dict[str, Any]:
        body = {
            "id": self.id,
            "object": "price",
            "active": True,
            "billing_scheme": self.billing_scheme,
            "created": self.created,
            "currency": self.currency,
            "livemode": self.livemode,
            "lookup_key": None,
            "metadata": {},
            "nickname": self.nickname,
            "product": self.product,
            "recurring": {
                "interval": self.interval,
                "interval_count": self.interval_count,
                "meter": self.meter,
                "usage_type": self.usage_type,
            },
            "tax_behavior": "unspecified",
            "tiers_mode": self.tiers_mode,
            "transform_quantity": None if self.divide_by is None
            else {"divide_by": self.divide_by, "round": self.round},
            "type": "recurring",
            "unit_amount": _whole(self.unit_amount),
            "unit_amount_decimal": None if self.unit_amount is None else _plain(self.unit_amount),
        }
        if expand_tiers and self.billing_scheme == "tiered":
            body["tiers"] = [t.to_json() for t in self.tiers]
        return body

    def amount_for(self, quantity: int) -> int:
        """What ``quantity`` units of usage cost, in minor units (Stripe's documented models:
        https://docs.stripe.com/products-prices/pricing-models#tiered-pricing)."""
        q = Decimal(max(quantity, 0))
        if self.billing_scheme == "per_unit":
            if self.divide_by is not None:
                mode = ROUND_CEILING if self.round == "up" else ROUND_FLOOR
                q = (q / self.divide_by).to_integral_value(rounding=mode)
            exact = q * (self.unit_amount or 0)
        elif self.tiers_mode == "volume":
            exact = Decimal(0)
            if q > 0:  # no usage falls in no tier: no flat fee
                tier = next(t for t in self.tiers if t.up_to is None or q <= t.up_to)
                exact = q * (tier.unit_amount or 0) + (tier.flat_amount or 0)
        else:  # graduated: each tier's units at its price, plus the flat fee of each tier reached
            exact, lower = Decimal(0), Decimal(0)
            for tier in self.tiers:
                if q <= lower:
                    break
                upper = q if tier.up_to is None or q < tier.up_to else Decimal(tier.up_to)
                exact += (upper - lower) * (tier.unit_amount or 0) + (tier.flat_amount or 0)
                lower = upper
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class SubscriptionItem:
    id: str
    price: Price
    created: int
    period_index: int = 0  # which period of the subscription is current


@dataclass
class Subscription:
    id: str
    customer: str
    created: int
    start_date: int
    billing_cycle_anchor: int
    interval: str
    interval_count: int
    currency: str
    livemode: bool
    items: list[SubscriptionItem]
    metadata: dict[str, str] = field(default_factory=dict)
    period_index: int = 0

    def period(self, index: int) -> tuple[int, int]:
        """Period ``index``: 0 runs from the start to the anchor when the anchor is later
        (Stripe bills that first, shorter period), then full intervals from the anchor."""
        first = 1 if self.billing_cycle_anchor > self.start_date else 0
        if index == 0 and first:
            return self.start_date, self.billing_cycle_anchor
        k = index - first
        return (advance(self.billing_cycle_anchor, self.interval, self.interval_count * k),
                advance(self.billing_cycle_anchor, self.interval, self.interval_count * (k + 1)))


@dataclass
class InvoiceLine:
    id: str
    item: SubscriptionItem
    quantity: int
    amount: int


@dataclass
class Invoice:
    id: str
    customer: str
    subscription: Subscription
    period_start: int
    period_end: int
    created: int
    finalizes_at: int
    currency: str
    livemode: bool
    line_ids: dict[str, str]  # subscription item -> line id
    status: str = "draft"
    finalized_at: int | None = None
    lines: list[InvoiceLine] = field(default_factory=list)


def advance(ts: int, interval: str, n: int) -> int:
    """``ts`` moved by ``n`` intervals; months and years keep the anchor's day, clamped to
    the month's last day (an anchor on Jan 31 bills Feb 28, then Mar 31)."""
    moment = datetime.fromtimestamp(ts, UTC)
    if interval == "day":
        return int((moment + timedelta(days=n)).timestamp())
    if interval == "week":
        return int((moment + timedelta(weeks=n)).timestamp())
    months = n if interval == "month" else 12 * n
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return int(moment.replace(year=year, month=month + 1, day=day).timestamp())


@dataclass
class BillingStore:
    products: dict[str, Product] = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=dict)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    items: dict[str, SubscriptionItem] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    grace_hours: int = DEFAULT_GRACE_HOURS
    rolled_at: int | None = None  # the clock at the last roll: nothing can be due again until it moves


# ---------------------------------------------------------------- the billing store


class Billing:
    """Per scope ``(livemode, account)``, like the rest of the emulator; guarded by the
    emulator's lock."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._stores: dict[tuple[bool, str | None], BillingStore] = {}

    def reset(self) -> None:
        self._stores.clear()

    def store(self, livemode: bool, account: str | None) -> BillingStore:
        key = (bool(livemode), account or None)
        if key not in self._stores:
            self._stores[key] = BillingStore()
        return self._stores[key]

    # -- settings (hook) ------------------------------------------------------
    def set_grace_hours(self, hours: int, *, livemode: bool = False, account: str | None = None) -> dict[str, Any]:
        if not isinstance(hours, int) or not 1 <= hours <= MAX_GRACE_HOURS:
            raise errors.invalid(f"The finalization grace period must be 1 to {MAX_GRACE_HOURS} hours, got {hours!r}.")
        with self.state.lock:
            self.roll(livemode, account)  # invoices already drafted keep the grace they were given
            self.store(livemode, account).grace_hours = hours
            return {"grace_hours": hours, "livemode": livemode, "account": account}

    # -- products -------------------------------------------------------------
    def create_product(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"name", "id", "metadata", "description", "expand"})
        name = _req_str(params, "name")
        with self.state.lock:
            store = self.store(livemode, account)
            product_id = _opt_str(params, "id") or new_id("prod_", 14)
            if product_id in store.products:
                raise errors.invalid(f"Product already exists: {product_id}", param="id", code="resource_already_exists")
            product = store.products[product_id] = Product(product_id, name, self.state.now(), livemode)
            return product.to_json()

    # -- prices ---------------------------------------------------------------
    def create_price(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"currency", "product", "recurring", "billing_scheme", "unit_amount",
                               "unit_amount_decimal", "tiers", "tiers_mode", "transform_quantity", "nickname",
                               "metadata", "expand"})
        currency = _req_str(params, "currency").lower()
        product_id = _req_str(params, "product")
        recurring = _sub(params, "recurring")
        if recurring is None:
            raise errors.invalid("This emulator implements recurring prices only.", param="recurring")
        interval = _req_str(recurring, "interval", label="recurring[interval]")
        if interval not in INTERVALS:
            raise errors.invalid(f"Invalid recurring[interval]: must be one of {', '.join(INTERVALS)}",
                                 param="recurring[interval]")
        count = _int_param(recurring.get("interval_count") or "1", "recurring[interval_count]")
        if not 1 <= count <= MAX_INTERVAL_COUNT[interval]:
            raise errors.invalid("Invalid recurring[interval_count]: the maximum billing interval is one year.",
                                 param="recurring[interval_count]")
        usage_type = _opt_str(recurring, "usage_type") or "licensed"
        meter_id = _opt_str(recurring, "meter")
        if usage_type == "metered" and meter_id is None:
            # Since API 2025-03-31.basil a metered price must be backed by a meter.
            raise errors.missing_param("recurring[meter]")
        scheme = _opt_str(params, "billing_scheme") or "per_unit"
        with self.state.lock:
            store = self.store(livemode, account)
            if product_id not in store.products:
                raise errors.no_such("product", product_id, param="product", status=400)
            if meter_id is not None and meter_id not in self.state.scope(livemode, account).meters:
                raise errors.no_such("billing.meter", meter_id, param="recurring[meter]", status=400)
            price = Price(id=new_id("price_", 24), product=product_id, currency=currency, created=self.state.now(),
                          livemode=livemode, interval=interval, interval_count=count, meter=meter_id,
                          usage_type=usage_type, billing_scheme=scheme, nickname=_opt_str(params, "nickname"))
            if scheme == "per_unit":
                price.unit_amount = _amount(params, "unit_amount", "")
                if price.unit_amount is None:
                    raise errors.missing_param("unit_amount")
                transform = _sub(params, "transform_quantity")
                if transform is not None:
                    price.divide_by = _int_param(transform.get("divide_by"), "transform_quantity[divide_by]")
                    price.round = _req_str(transform, "round", label="transform_quantity[round]")
                    if price.divide_by < 1 or price.round not in ("up", "down"):
                        raise errors.invalid("Invalid transform_quantity.", param="transform_quantity")
            elif scheme == "tiered":
                if params.get("transform_quantity") is not None:
                    raise errors.invalid("transform_quantity is not allowed with billing_scheme=tiered.",
                                         param="transform_quantity")
                price.tiers_mode = _req_str(params, "tiers_mode")
                if price.tiers_mode not in ("graduated", "volume"):
                    raise errors.invalid("Invalid tiers_mode: must be one of graduated, volume", param="tiers_mode")
                price.tiers = _tiers(params.get("tiers"))
            else:
                raise errors.invalid("Invalid billing_scheme: must be one of per_unit, tiered", param="billing_scheme")
            store.prices[price.id] = price
            return price.to_json(_expands(params, "tiers"))

    def get_price(self, livemode: bool, account: str | None, price_id: str, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            price = self.store(livemode, account).prices.get(price_id)
            if price is None:
                raise errors.no_such("price", price_id)
            return price.to_json(_expands(params, "tiers"))

    def list_prices(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            product = _opt_str(params, "product")
            items = [p.to_json(_expands(params, "data.tiers"))
                     for p in reversed(list(self.store(livemode, account).prices.values()))
                     if product is None or p.product == product]
            return paginate(items, params, "/v1/prices")

    # -- subscriptions ----------------------------------------------------------
    def create_subscription(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"customer", "items", "billing_cycle_anchor", "metadata", "expand",
                               "collection_method", "proration_behavior"})
        customer = _req_str(params, "customer")
        raw_items = params.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            raise errors.missing_param("items")
        with self.state.lock:
            self.roll(livemode, account)
            store = self.store(livemode, account)
            now = self.state.now()
            if customer not in self.state.scope(livemode, account).customers:
                raise errors.no_such("customer", customer, param="customer", status=400)
            prices = []
            for i, raw in enumerate(raw_items):
                price_id = _req_str(raw if isinstance(raw, dict) else {}, "price", label=f"items[{i}][price]")
                price = store.prices.get(price_id)
                if price is None:
                    raise errors.no_such("price", price_id, param=f"items[{i}][price]", status=400)
                prices.append(price)
            first = prices[0]
            if any((p.interval, p.interval_count, p.currency) != (first.interval, first.interval_count, first.currency)
                   for p in prices):
                raise errors.invalid("All prices on a subscription must have the same recurring interval and currency.",
                                     param="items")
            anchor = now
            if params.get("billing_cycle_anchor") not in (None, ""):
                anchor = _int_param(params["billing_cycle_anchor"], "billing_cycle_anchor")
                # The anchor is a future time no later than the first natural period end
                # (https://docs.stripe.com/billing/subscriptions/billing-cycle).
                if anchor < now or anchor > advance(now, first.interval, first.interval_count):
                    raise errors.invalid("billing_cycle_anchor cannot be later than next natural billing date "
                                         "for plan, nor in the past.", param="billing_cycle_anchor")
            sub = Subscription(id=new_id("sub_", 24), customer=customer, created=now, start_date=now,
                               billing_cycle_anchor=anchor, interval=first.interval,
                               interval_count=first.interval_count, currency=first.currency, livemode=livemode,
                               items=[], metadata={str(k): str(v) for k, v in (_sub(params, "metadata") or {}).items()})
            for price in prices:
                item = SubscriptionItem(id=new_id("si_", 14), price=price, created=now)
                sub.items.append(item)
                store.items[item.id] = item
            store.subscriptions[sub.id] = sub
            return self._subscription_json(sub)

    def get_subscription(self, livemode: bool, account: str | None, sub_id: str) -> dict[str, Any]:
        with self.state.lock:
            self.roll(livemode, account)
            sub = self.store(livemode, account).subscriptions.get(sub_id)
            if sub is None:
                raise errors.no_such("subscription", sub_id)
            return self._subscription_json(sub)

    def list_subscriptions(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.roll(livemode, account)
            customer, price = _opt_str(params, "customer"), _opt_str(params, "price")
            status = _opt_str(params, "status")
            subs = {s.id: s for s in reversed(list(self.store(livemode, account).subscriptions.values()))
                    if (customer is None or s.customer == customer)
                    and (price is None or any(i.price.id == price for i in s.items))
                    and status in (None, "active", "all")}
            # Page on ids first: only the page's subscriptions are rendered.
            page = paginate([{"id": sid} for sid in subs], params, "/v1/subscriptions")
            page["data"] = [self._subscription_json(subs[item["id"]]) for item in page["data"]]
            return page

    def list_subscription_items(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        sub_id = _req_str(params, "subscription")
        with self.state.lock:
            self.roll(livemode, account)
            sub = self.store(livemode, account).subscriptions.get(sub_id)
            if sub is None:
                raise errors.no_such("subscription", sub_id, param="subscription", status=400)
            return paginate([self._item_json(sub, i) for i in sub.items], params, "/v1/subscription_items")

    def _item_json(self, sub: Subscription, item: SubscriptionItem) -> dict[str, Any]:
        start, end = sub.period(sub.period_index)
        return {
            "id": item.id,
            "object": "subscription_item",
            "created": item.created,
            "current_period_start": start,
            "current_period_end": end,
            "metadata": {},
            "price": item.price.to_json(),
            "subscription": sub.id,
        }

    def _subscription_json(self, sub: Subscription) -> dict[str, Any]:
        items = [self._item_json(sub, i) for i in sub.items]
        return {
            "id": sub.id,
            "object": "subscription",
            "billing_cycle_anchor": sub.billing_cycle_anchor,
            "collection_method": "charge_automatically",
            "created": sub.created,
            "currency": sub.currency,
            "customer": sub.customer,
            "items": {"object": "list", "data": items[:_EMBEDDED_LINES], "has_more": len(items) > _EMBEDDED_LINES,
                      "url": f"/v1/subscription_items?subscription={sub.id}"},
            "livemode": sub.livemode,
            "metadata": dict(sub.metadata),
            "start_date": sub.start_date,
            "status": "active",
        }

    # -- the clock: period ends and finalization ----------------------------------
    def roll(self, livemode: bool, account: str | None) -> None:
        """Bring subscriptions and invoices of one scope up to the emulator's clock."""
        store = self.store(livemode, account)
        now = self.state.now()
        if store.rolled_at == now:
            return  # a subscription created since ends its first period later than now
        store.rolled_at = now
        for sub in store.subscriptions.values():
            while sub.period(sub.period_index)[1] <= now:
                start, end = sub.period(sub.period_index)
                invoice = Invoice(id=new_id("in_", 24), customer=sub.customer, subscription=sub, period_start=start,
                                  period_end=end, created=end, finalizes_at=end + 3600 * store.grace_hours,
                                  currency=sub.currency, livemode=sub.livemode,
                                  line_ids={i.id: new_id("il_", 24) for i in sub.items})
                store.invoices[invoice.id] = invoice
                sub.period_index += 1
        for invoice in store.invoices.values():
            if invoice.status == "draft" and invoice.finalizes_at <= now:
                # Usage received after this moment is not on this invoice, nor on any other.
                invoice.lines = self._lines(livemode, account, invoice, received_before=invoice.finalizes_at)
                invoice.status = "open"
                invoice.finalized_at = invoice.finalizes_at

    def _usage(self, livemode: bool, account: str | None, customer: str, price: Price, start: int, end: int,
               received_before: int | None) -> int:
        scope: ScopeStore = self.state.scope(livemode, account)
        meter = scope.meters.get(price.meter or "")
        if meter is None:
            return 0
        events: list[MeterEvent] = [
            e for e in scope.by_customer.get((meter.event_name, customer), ())
            if e.cancelled_at is None and e.meter_id in (None, meter.id)
            and e.payload.get(meter.customer_key) == customer and start <= e.timestamp < end
            and (received_before is None or e.created < received_before)
        ]
        return _aggregate(meter, events)

    def _lines(self, livemode: bool, account: str | None, invoice: Invoice,
               received_before: int | None) -> list[InvoiceLine]:
        lines = []
        for item in invoice.subscription.items:
            if item.price.usage_type != "metered":
                continue
            quantity = self._usage(livemode, account, invoice.customer, item.price, invoice.period_start,
                                   invoice.period_end, received_before)
            lines.append(InvoiceLine(invoice.line_ids[item.id], item, quantity, item.price.amount_for(quantity)))
        return lines

    def _current_lines(self, livemode: bool, account: str | None, invoice: Invoice) -> list[InvoiceLine]:
        # A draft shows the usage received so far; finalization fixes it.
        return invoice.lines if invoice.status != "draft" else self._lines(livemode, account, invoice, None)

    # -- invoices -------------------------------------------------------------------
    def _line_json(self, invoice: Invoice, line: InvoiceLine, invoice_id: str | None) -> dict[str, Any]:
        price = line.item.price
        return {
            "id": line.id,
            "object": "line_item",
            "amount": line.amount,
            "currency": invoice.currency,
            "description": f"Usage ({price.nickname or price.id})",
            "invoice": invoice_id,
            "livemode": invoice.livemode,
            "metadata": {},
            "parent": {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": invoice.subscription.id,
                    "subscription_item": line.item.id,
                },
            },
            "period": {"start": invoice.period_start, "end": invoice.period_end},
            "pricing": {
                "type": "price_details",
                "price_details": {"price": price.id, "product": price.product},
                "unit_amount_decimal": None if price.unit_amount is None else _plain(price.unit_amount),
            },
            "quantity": line.quantity,
            "subtotal": line.amount,
        }

    def _invoice_json(self, invoice: Invoice, lines: list[InvoiceLine], *, preview: bool = False) -> dict[str, Any]:
        invoice_id = None if preview else invoice.id
        data = [self._line_json(invoice, line, invoice_id) for line in lines]
        total = sum(line.amount for line in lines)
        return {
            "id": invoice_id,
            "object": "invoice",
            "amount_due": total,
            "amount_paid": 0,
            "amount_remaining": total,
            # When a draft will be finalized automatically:
            # https://docs.stripe.com/api/invoices/object#invoice_object-automatically_finalizes_at
            "automatically_finalizes_at": invoice.finalizes_at if invoice.status == "draft" and not preview else None,
            "billing_reason": "upcoming" if preview else "subscription_cycle",
            "collection_method": "charge_automatically",
            "created": invoice.created,
            "currency": invoice.currency,
            "customer": invoice.customer,
            "lines": {"object": "list", "data": data[:_EMBEDDED_LINES], "has_more": len(data) > _EMBEDDED_LINES,
                      "url": f"/v1/invoices/{invoice_id}/lines"},
            "livemode": invoice.livemode,
            "metadata": {},
            "parent": {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"metadata": dict(invoice.subscription.metadata),
                                         "subscription": invoice.subscription.id},
            },
            "period_start": invoice.period_start,
            "period_end": invoice.period_end,
            "status": invoice.status,
            "status_transitions": {"finalized_at": invoice.finalized_at, "marked_uncollectible_at": None,
                                   "paid_at": None, "voided_at": None},
            "subtotal": total,
            "total": total,
        }

    def _invoice(self, livemode: bool, account: str | None, invoice_id: str) -> Invoice:
        invoice = self.store(livemode, account).invoices.get(invoice_id)
        if invoice is None:
            raise errors.no_such("invoice", invoice_id)
        return invoice

    def get_invoice(self, livemode: bool, account: str | None, invoice_id: str) -> dict[str, Any]:
        with self.state.lock:
            self.roll(livemode, account)
            invoice = self._invoice(livemode, account, invoice_id)
            return self._invoice_json(invoice, self._current_lines(livemode, account, invoice))

    def list_invoices(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.roll(livemode, account)
            customer, sub = _opt_str(params, "customer"), _opt_str(params, "subscription")
            status = _opt_str(params, "status")
            invoices = {i.id: i for i in sorted(self.store(livemode, account).invoices.values(),
                                                key=lambda i: (i.created, i.id), reverse=True)  # newest first
                        if (customer is None or i.customer == customer)
                        and (sub is None or i.subscription.id == sub)
                        and (status is None or i.status == status)
                        and _created_matches(i.created, params.get("created"))}
            page = paginate([{"id": iid} for iid in invoices], params, "/v1/invoices")
            page["data"] = [self._invoice_json(invoices[item["id"]], self._current_lines(livemode, account,
                                                                                         invoices[item["id"]]))
                            for item in page["data"]]
            return page

    def list_invoice_lines(self, livemode: bool, account: str | None, invoice_id: str,
                           params: dict[str, Any]) -> dict[str, Any]:
        with self.state.lock:
            self.roll(livemode, account)
            invoice = self._invoice(livemode, account, invoice_id)
            lines = [self._line_json(invoice, line, invoice.id)
                     for line in self._current_lines(livemode, account, invoice)]
            return paginate(lines, params, f"/v1/invoices/{invoice_id}/lines")

    def create_preview(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        """The invoice the subscription's current period will produce, with usage so far."""
        customer, sub_id = _opt_str(params, "customer"), _opt_str(params, "subscription")
        if customer is None and sub_id is None:
            raise errors.invalid("Missing required param: customer or subscription.", param="customer")
        with self.state.lock:
            self.roll(livemode, account)
            store = self.store(livemode, account)
            if sub_id is not None:
                sub = store.subscriptions.get(sub_id)
                if sub is None or (customer is not None and sub.customer != customer):
                    raise errors.no_such("subscription", sub_id, param="subscription", status=400)
            else:
                subs = [s for s in store.subscriptions.values() if s.customer == customer]
                if not subs:
                    raise errors.invalid(f"No upcoming invoices for customer: {customer}",
                                         code="invoice_upcoming_none", status=404)
                sub = subs[0]
            start, end = sub.period(sub.period_index)
            draft = Invoice(id="upcoming", customer=sub.customer, subscription=sub, period_start=start,
                            period_end=end, created=end, finalizes_at=end + 3600 * store.grace_hours,
                            currency=sub.currency, livemode=livemode,
                            line_ids={i.id: "il_tmp_" + i.id[3:] for i in sub.items})
            return self._invoice_json(draft, self._lines(livemode, account, draft, None), preview=True)


def _created_matches(created: int, bounds: Any) -> bool:
    """Stripe's `created` list filter: an exact time or {gt, gte, lt, lte}."""
    if bounds in (None, ""):
        return True
    if not isinstance(bounds, dict):
        return created == _int_param(bounds, "created")
    tests = {"gt": created.__gt__, "gte": created.__ge__, "lt": created.__lt__, "lte": created.__le__}
    return all(tests[k](_int_param(v, f"created[{k}]")) for k, v in bounds.items() if k in tests)


def _expands(params: dict[str, Any], name: str) -> bool:
    expand = params.get("expand") or []
    return name in (expand if isinstance(expand, list) else [expand])


def _tiers(raw: Any) -> list[PriceTier]:
    if not isinstance(raw, list) or not raw:
        raise errors.missing_param("tiers")
    tiers, previous = [], 0
    for i, tier in enumerate(raw):
        if not isinstance(tier, dict):
            raise errors.invalid(f"Invalid object: tiers[{i}]", param=f"tiers[{i}]")
        up_to_raw = tier.get("up_to")
        last = i == len(raw) - 1
        if up_to_raw == "inf":
            if not last:
                raise errors.invalid("Only the last tier may have up_to=inf.", param=f"tiers[{i}][up_to]")
            up_to = None
        else:
            up_to = _int_param(up_to_raw, f"tiers[{i}][up_to]")
            if last:
                raise errors.invalid("The last tier must have up_to=inf.", param=f"tiers[{i}][up_to]")
            if up_to <= previous:
                raise errors.invalid("Tiers must be in increasing up_to order.", param=f"tiers[{i}][up_to]")
            previous = up_to
        unit = _amount(tier, "unit_amount", f"tiers[{i}][")
        flat = _amount(tier, "flat_amount", f"tiers[{i}][")
        if unit is None and flat is None:
            raise errors.missing_param(f"tiers[{i}][unit_amount]")
        tiers.append(PriceTier(up_to, unit, flat))
    return tiers


def routes() -> list[tuple[str, str, Any]]:
    """(method, path pattern, endpoint(state, livemode, account, params, groups)) for handlers."""
    b = lambda s: s.billing  # noqa: E731
    return [
        ("POST", r"/v1/products", lambda s, lm, ac, p, m: b(s).create_product(lm, ac, p)),
        ("POST", r"/v1/prices", lambda s, lm, ac, p, m: b(s).create_price(lm, ac, p)),
        ("GET", r"/v1/prices", lambda s, lm, ac, p, m: b(s).list_prices(lm, ac, p)),
        ("GET", r"/v1/prices/(?P<id>[^/]+)", lambda s, lm, ac, p, m: b(s).get_price(lm, ac, m["id"], p)),
        ("POST", r"/v1/subscriptions", lambda s, lm, ac, p, m: b(s).create_subscription(lm, ac, p)),
        ("GET", r"/v1/subscriptions", lambda s, lm, ac, p, m: b(s).list_subscriptions(lm, ac, p)),
        ("GET", r"/v1/subscriptions/(?P<id>[^/]+)", lambda s, lm, ac, p, m: b(s).get_subscription(lm, ac, m["id"])),
        ("GET", r"/v1/subscription_items", lambda s, lm, ac, p, m: b(s).list_subscription_items(lm, ac, p)),
        ("POST", r"/v1/invoices/create_preview", lambda s, lm, ac, p, m: b(s).create_preview(lm, ac, p)),
        ("GET", r"/v1/invoices", lambda s, lm, ac, p, m: b(s).list_invoices(lm, ac, p)),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)", lambda s, lm, ac, p, m: b(s).get_invoice(lm, ac, m["id"])),
        ("GET", r"/v1/invoices/(?P<id>[^/]+)/lines",
         lambda s, lm, ac, p, m: b(s).list_invoice_lines(lm, ac, m["id"], p)),
    ]
