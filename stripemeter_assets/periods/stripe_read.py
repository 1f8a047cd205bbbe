"""Reading billing periods from Stripe with the official SDK: per account, the metered
prices on the mapped meters, the subscriptions on those prices (their items' current
periods) and the recent invoices' lines (the periods already invoiced).

List calls are paged at Stripe's maximum of 100 and filtered by price, so reading N
customers costs about N/100 calls per price rather than one per customer; every call is
paced under the key mode's documented rate limit and retried with backoff on 429, 5xx and
connection errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import stripe

from stripemeter_assets.push.client import make_client
from stripemeter_assets.push.pacing import Pacer, RetryPolicy

PAGE = 100  # Stripe's maximum page size for list calls


def utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ItemPeriod:
    """One period of one subscription item, as Stripe has it."""

    stripe_customer: str
    subscription_item: str
    price: str
    event_name: str
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class InvoiceLine:
    """A subscription item's line on an invoice (or on the preview of the open period)."""

    stripe_customer: str
    subscription_item: str
    price: str | None
    period_start: datetime
    period_end: datetime
    quantity: int
    amount: int          # minor units
    currency: str
    invoice: str | None  # None for a preview
    status: str          # preview | draft | open | paid | void | uncollectible
    finalized_at: datetime | None = None


@dataclass
class AccountBilling:
    """What one account's Stripe knows about the billing of the mapped meters."""

    meters: dict[str, str] = field(default_factory=dict)            # event_name -> meter id
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)  # price id -> price (tiers expanded)
    periods: list[ItemPeriod] = field(default_factory=list)
    lines: list[InvoiceLine] = field(default_factory=list)
    subscriptions: dict[str, str] = field(default_factory=dict)      # subscription item -> subscription


class BillingReader:
    """Stripe reads for one (key, account)."""

    def __init__(self, api_key: str, mode: str, account: str | None, *, api_base: str | None, pacer: Pacer,
                 retry: RetryPolicy, timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        self.mode = mode
        self.account = account
        self._client = make_client(api_key, api_base, account, timeout)
        self._pacer = pacer
        self._retry = retry
        self._sleep = sleep
        self.calls = 0

    def __repr__(self) -> str:
        return f"BillingReader(mode={self.mode!r}, account={self.account or 'platform'!r})"

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        attempt = 0
        while True:
            attempt += 1
            self._pacer.acquire(self.mode, "general")
            self.calls += 1
            try:
                return fn(*args)
            except (stripe.RateLimitError, stripe.APIConnectionError) as exc:
                error: stripe.StripeError = exc
            except stripe.APIError as exc:
                if (exc.http_status or 500) < 500:
                    raise
                error = exc
            if attempt >= self._retry.max_attempts:
                raise error
            self._sleep(self._retry.delay(attempt))

    def _pages(self, fn: Callable[..., Any], params: dict[str, Any], *args: Any) -> Iterator[Any]:
        params = {**params, "limit": PAGE}
        while True:
            page = self._call(fn, *args, params)
            yield from page.data
            if not page.has_more or not page.data:
                return
            params = {**params, "starting_after": page.data[-1].id}

    def read(self, event_names: set[str], *, invoices_since: datetime) -> AccountBilling:
        v1 = self._client.v1
        out = AccountBilling()
        for meter in self._pages(v1.billing.meters.list, {"status": "active"}):
            if meter.event_name in event_names:
                out.meters[meter.event_name] = meter.id
        event_for_meter = {meter_id: name for name, meter_id in out.meters.items()}
        for price in self._pages(v1.prices.list, {"type": "recurring", "expand": ["data.tiers"]}):
            body = price.to_dict()
            recurring = body.get("recurring") or {}
            if recurring.get("usage_type") == "metered" and recurring.get("meter") in event_for_meter:
                out.prices[price.id] = body
        for price_id, price in out.prices.items():
            event_name = event_for_meter[price["recurring"]["meter"]]
            for sub in self._pages(v1.subscriptions.list, {"price": price_id, "status": "active"}):
                items = sub["items"]
                item_list = list(items.data) if not items.has_more else list(
                    self._pages(v1.subscription_items.list, {"subscription": sub.id}))
                for item in item_list:
                    if item.price.id != price_id:
                        continue
                    out.subscriptions[item.id] = sub.id
                    out.periods.append(ItemPeriod(sub.customer, item.id, price_id, event_name,
                                                  utc(item.current_period_start), utc(item.current_period_end)))
        items = set(out.subscriptions)
        since = int(invoices_since.replace(tzinfo=UTC).timestamp())
        for invoice in self._pages(v1.invoices.list, {"created": {"gte": since}}):
            lines = invoice.lines
            line_list = list(lines.data) if not lines.has_more else list(
                self._pages(v1.invoices.line_items.list, {}, invoice.id))
            for line in line_list:
                transitions = invoice.to_dict().get("status_transitions") or {}
                parsed = _line(line.to_dict(), invoice.customer, invoice.id, invoice.status,
                               transitions.get("finalized_at"))
                if parsed is not None and parsed.subscription_item in items:
                    out.lines.append(parsed)
        return out

    def preview(self, stripe_customer: str, subscription: str) -> list[InvoiceLine]:
        """The lines of the open period's invoice as Stripe would bill it now."""
        invoice = self._call(self._client.v1.invoices.create_preview,
                             {"customer": stripe_customer, "subscription": subscription})
        parsed = (_line(line.to_dict(), stripe_customer, None, "preview") for line in invoice.lines.data)
        return [line for line in parsed if line is not None]


def _line(line: dict[str, Any], customer: str, invoice: str | None, status: str,
          finalized_at: int | None = None) -> InvoiceLine | None:
    details = (line.get("parent") or {}).get("subscription_item_details") or {}
    if not details.get("subscription_item"):
        return None  # an invoice item, not a subscription item's usage
    price_details = (line.get("pricing") or {}).get("price_details") or {}
    return InvoiceLine(
        stripe_customer=customer,
        subscription_item=details["subscription_item"],
        price=price_details.get("price"),
        period_start=utc(line["period"]["start"]),
        period_end=utc(line["period"]["end"]),
        quantity=int(line.get("quantity") or 0),
        amount=int(line["amount"]),
        currency=str(line["currency"]).upper(),
        invoice=invoice,
        status=str(status),
        finalized_at=None if finalized_at is None else utc(finalized_at),
    )
