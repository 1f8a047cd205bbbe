"""The emulator's subscriptions, metered prices and invoices, through the real stripe SDK.

Amounts are checked against Stripe's own worked examples (tiered pricing page) and against
the project's pricing library, which is independent code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import stripe

from stripemeter_assets.pricing import parse_price_config, price_line
from stripemeter_assets.stripe_emulator import EmulatorServer

HOUR = 3_600
DAY = 86_400


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


START = ts("2026-10-15T13:42:11")


@pytest.fixture
def emu():
    with EmulatorServer(now=START) as server:
        server.create_customer("cus_A")
        server.create_customer("cus_B")
        yield server


@pytest.fixture
def client(emu):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url}, max_network_retries=0)


@pytest.fixture
def meter(client):
    return client.v1.billing.meters.create(
        {"display_name": "API calls", "event_name": "api_calls", "default_aggregation": {"formula": "sum"}})


@pytest.fixture
def product(client):
    return client.v1.products.create({"name": "API"})


def metered(client, product, meter, interval="month", interval_count=1, **shape):
    return client.v1.prices.create({
        "currency": "usd", "product": product.id,
        "recurring": {"interval": interval, "interval_count": interval_count, "usage_type": "metered",
                      "meter": meter.id},
        **shape,
    })


def usage(client, value, at, customer="cus_A"):
    client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": customer, "value": str(value)}, "timestamp": at})


# Stripe's tiered pricing page: 1-5 fonts at 7 USD, 6-10 at 6.50 USD, 11+ at 6 USD.
# https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing
FONT_TIERS = [{"up_to": 5, "unit_amount": 700}, {"up_to": 10, "unit_amount": 650}, {"up_to": "inf", "unit_amount": 600}]
# Its volume table: 1 -> 7, 5 -> 35, 6 -> 39, 20 -> 120, 25 -> 150 USD.
VOLUME_EXAMPLES = [(1, 700), (5, 3500), (6, 3900), (20, 12000), (25, 15000)]
# Graduated, as the page explains it: each tier's units at its price (5 fonts = 35 USD; 6 = 35 + 6.50).
GRADUATED_EXAMPLES = [(1, 700), (5, 3500), (6, 4150), (20, 3500 + 3250 + 6000), (25, 3500 + 3250 + 9000)]


def invoice_amount(client, emu, price, quantity):
    """Subscribe cus_A to `price`, report `quantity`, let the period end and the invoice finalize."""
    emu.set_clock(START)
    sub = client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}]})
    usage(client, quantity, START + 60)
    emu.set_clock(START + 40 * DAY)
    (invoice,) = client.v1.invoices.list({"subscription": sub.id}).data
    assert invoice.status == "open"
    return invoice.lines.data[0].amount


@pytest.mark.parametrize("mode,examples", [("volume", VOLUME_EXAMPLES), ("graduated", GRADUATED_EXAMPLES)])
def test_tiered_invoices_match_stripes_worked_examples(client, emu, mode, examples):
    for quantity, expected in examples:
        emu.reset()
        emu.create_customer("cus_A")
        meter = client.v1.billing.meters.create(
            {"display_name": "API calls", "event_name": "api_calls", "default_aggregation": {"formula": "sum"}})
        product = client.v1.products.create({"name": "API"})
        price = metered(client, product, meter, billing_scheme="tiered", tiers_mode=mode, tiers=FONT_TIERS)
        assert invoice_amount(client, emu, price, quantity) == expected, (mode, quantity)


SHAPES = {
    "per_unit_decimal": {"unit_amount_decimal": "0.35"},
    "package": {"unit_amount": 250, "transform_quantity": {"divide_by": 1000, "round": "up"}},
    "graduated_flat": {"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": [
        {"up_to": 1000, "flat_amount": 500, "unit_amount": 0},
        {"up_to": 10000, "unit_amount_decimal": "0.8"},
        {"up_to": "inf", "unit_amount_decimal": "0.25", "flat_amount": 1000}]},
    "volume_flat": {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": [
        {"up_to": 1000, "flat_amount": 900, "unit_amount_decimal": "1.1"},
        {"up_to": 10000, "flat_amount": 500, "unit_amount_decimal": "0.9"},
        {"up_to": "inf", "unit_amount_decimal": "0.333"}]},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("quantity", [0, 999, 1000, 1001, 12_345])
def test_invoice_amounts_agree_with_the_pricing_library(client, emu, product, meter, shape, quantity):
    price = metered(client, product, meter, **SHAPES[shape])
    full = client.v1.prices.retrieve(price.id, {"expand": ["tiers"]})
    expected = price_line(parse_price_config(full.to_dict()), Decimal(quantity))
    assert Decimal(invoice_amount(client, emu, price, quantity)) / 100 == expected


def test_tiers_only_appear_when_expanded(client, product, meter):
    price = metered(client, product, meter, **SHAPES["volume_flat"])
    assert "tiers" not in client.v1.prices.retrieve(price.id).to_dict()
    assert len(client.v1.prices.retrieve(price.id, {"expand": ["tiers"]}).tiers) == 3
    assert price.recurring.meter == meter.id and price.recurring.usage_type == "metered"


def test_metered_price_needs_a_meter(client, product):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create({"currency": "usd", "product": product.id, "unit_amount": 1,
                                 "recurring": {"interval": "month", "usage_type": "metered"}})
    assert err.value.param == "recurring[meter]"


def test_anchor_mid_month_sets_item_periods_to_the_second(client, emu, product, meter):
    price = metered(client, product, meter, unit_amount=1)
    emu.set_clock(ts("2026-10-10T08:00:00"))
    sub = client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}],
                                          "billing_cycle_anchor": START})
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (ts("2026-10-10T08:00:00"), START)
    emu.set_clock(START + 5)
    (item,) = client.v1.subscription_items.list({"subscription": sub.id}).data
    assert (item.current_period_start, item.current_period_end) == (START, ts("2026-11-15T13:42:11"))
    emu.set_clock(ts("2027-01-20T00:00:00"))
    (item,) = client.v1.subscription_items.list({"subscription": sub.id}).data
    assert (item.current_period_start, item.current_period_end) == (ts("2027-01-15T13:42:11"),
                                                                    ts("2027-02-15T13:42:11"))


def test_anchor_on_the_31st_bills_on_the_last_day_of_short_months(client, emu, product, meter):
    price = metered(client, product, meter, unit_amount=1)
    emu.set_clock(ts("2027-01-31T00:00:00"))
    sub = client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}]})
    emu.set_clock(ts("2027-03-01T00:00:00"))
    (item,) = client.v1.subscription_items.list({"subscription": sub.id}).data
    assert (item.current_period_start, item.current_period_end) == (ts("2027-02-28T00:00:00"), ts("2027-03-31T00:00:00"))


@pytest.mark.parametrize("interval,count,end", [
    ("week", 1, "2026-10-22T13:42:11"), ("week", 2, "2026-10-29T13:42:11"), ("day", 3, "2026-10-18T13:42:11"),
    ("year", 1, "2027-10-15T13:42:11"), ("month", 3, "2027-01-15T13:42:11")])
def test_intervals(client, emu, product, meter, interval, count, end):
    price = metered(client, product, meter, interval=interval, interval_count=count, unit_amount=1)
    sub = client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}]})
    item = sub["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (START, ts(end))


def test_usage_after_finalization_is_on_no_invoice(client, emu, product, meter):
    price = metered(client, product, meter, interval="day", unit_amount=10)
    sub = client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}]})
    end = START + DAY
    usage(client, 5, START + 10)
    emu.set_clock(end + 30 * 60)  # inside the 1 h grace: still counted
    usage(client, 7, end - 1)
    (draft,) = client.v1.invoices.list({"customer": "cus_A"}).data
    assert draft.status == "draft" and draft.automatically_finalizes_at == end + HOUR
    assert draft.lines.data[0].quantity == 12
    emu.set_clock(end + 2 * HOUR)  # after finalization: on no invoice
    usage(client, 100, end - 1)
    invoice = client.v1.invoices.retrieve(draft.id)
    assert invoice.status == "open" and invoice.status_transitions.finalized_at == end + HOUR
    (line,) = client.v1.invoices.line_items.list(draft.id).data
    assert (line.quantity, line.amount) == (12, 120)
    assert line.parent.subscription_item_details.subscription_item == sub["items"].data[0].id
    assert (line.period.start, line.period.end) == (START, end)
    emu.set_clock(end + DAY + 2 * HOUR)
    newest = client.v1.invoices.list({"customer": "cus_A"}).data[0]
    assert newest.period_start == end and newest.lines.data[0].quantity == 0


def test_grace_period_is_per_account_and_bounded(client, emu, product, meter):
    with pytest.raises(Exception):
        emu.set_invoice_grace(73)
    emu.set_invoice_grace(48)
    price = metered(client, product, meter, interval="day", unit_amount=10)
    client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}]})
    end = START + DAY
    emu.set_clock(end + 47 * HOUR)
    usage(client, 3, end - 1)
    emu.set_clock(end + 49 * HOUR)
    invoice = client.v1.invoices.list({"customer": "cus_A", "status": "open"}).data[0]
    assert invoice.lines.data[0].quantity == 3
    assert invoice.status_transitions.finalized_at == end + 48 * HOUR


def test_preview_shows_the_open_period_so_far(client, emu, product, meter):
    price = metered(client, product, meter, **SHAPES["graduated_flat"])
    sub = client.v1.subscriptions.create({"customer": "cus_A", "items": [{"price": price.id}]})
    usage(client, 1500, START + 60)
    emu.set_clock(START + 3 * DAY)
    preview = client.v1.invoices.create_preview({"customer": "cus_A", "subscription": sub.id})
    line = preview.lines.data[0]
    assert preview.id is None and preview.status == "draft"
    assert (line.quantity, line.amount) == (1500, 500 + 400)
    assert (line.period.start, line.period.end) == (START, ts("2026-11-15T13:42:11"))
    assert line.pricing.price_details.price == price.id


def test_lists_filter_and_page(client, emu, product, meter):
    price = metered(client, product, meter, unit_amount=1)
    for customer in ("cus_A", "cus_B"):
        client.v1.subscriptions.create({"customer": customer, "items": [{"price": price.id}]})
    page = client.v1.subscriptions.list({"price": price.id, "limit": 1})
    assert len(page.data) == 1 and page.has_more
    every = [s.customer for s in client.v1.subscriptions.list({"price": price.id, "limit": 1}).auto_paging_iter()]
    assert sorted(every) == ["cus_A", "cus_B"]
    assert [s.customer for s in client.v1.subscriptions.list({"customer": "cus_B"}).data] == ["cus_B"]
    assert [p.id for p in client.v1.prices.list({"product": product.id}).data] == [price.id]
