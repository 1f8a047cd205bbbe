"""Billing-period fixtures: the temp warehouse, landing and config of `tests/conftest.py`,
a real Stripe emulator with subscriptions made through the real stripe SDK, and a helper
that runs the pipeline (daily_usage, billing_periods, period_usage, stripe_push) through
Dagster with both clocks (STRIPEMETER_NOW and the emulator's) moved together."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import dagster as dg
import pytest
import stripe

from stripemeter_assets.counters.assets import daily_usage, period_usage
from stripemeter_assets.push.assets import stripe_push
from stripemeter_assets.periods.assets import billing_periods
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.resources import StripeResource
from stripemeter_assets.stripe_emulator import EmulatorServer
from tests.conftest import BASE_CONFIG

# Built at run time: no key-shaped literal in the repository.
TEST_KEY = "sk_test_" + "periods"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def naive(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


class Billing:
    def __init__(self, env, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch):
        self.env = env
        self.emu = emu
        self.client = stripe.StripeClient(TEST_KEY, base_addresses={"api": emu.url}, max_network_retries=0)
        monkeypatch.setenv("STRIPE_API_KEY", TEST_KEY)
        monkeypatch.setenv("STRIPE_API_BASE", emu.url)
        self._files = itertools.count()
        self._keys = itertools.count()
        self.configure()
        emu.create_customer("cus_A")
        emu.create_customer("cus_B")
        self.meter = self.client.v1.billing.meters.create(
            {"display_name": "API calls", "event_name": "api_calls", "default_aggregation": {"formula": "sum"}})
        self.product = self.client.v1.products.create({"name": "API"})

    def configure(self, **extra) -> None:
        self.env.write_config({**BASE_CONFIG, "stripe": {
            "meters": [{"tenant": "*", "metric": "api_calls", "event_name": "api_calls"}], **extra}})

    def set_now(self, epoch: int) -> None:
        self.env.set_now(iso(epoch))
        self.emu.set_clock(epoch)

    def price(self, interval: str = "month", **shape) -> stripe.Price:
        shape = shape or {"unit_amount": 10}
        return self.client.v1.prices.create({"currency": "usd", "product": self.product.id, **shape, "recurring": {
            "interval": interval, "usage_type": "metered", "meter": self.meter.id}})

    def subscribe(self, customer: str, price: stripe.Price, anchor: int | None = None) -> stripe.Subscription:
        params = {"customer": customer, "items": [{"price": price.id}]}
        if anchor is not None:
            params["billing_cycle_anchor"] = anchor
        return self.client.v1.subscriptions.create(params)

    def land(self, *events: tuple[str, str, int]) -> None:
        """(customer, quantity, epoch ts) events, as one landing file ingested at once."""
        rows = [{"tenantId": "acme", "metric": "api_calls", "customerRef": c, "quantity": q, "ts": iso(t),
                 "idempotencyKey": f"k{next(self._keys)}"} for c, q, t in events]
        self.env.drop_jsonl(f"f{next(self._files)}.jsonl", rows)
        self.env.ingest(batch_id=f"b{next(self._files)}")

    def resources(self) -> dict:
        return {"warehouse": WarehouseResource(),
                "stripe": StripeResource(pacing=False, backoff_base_seconds=0.001, backoff_max_seconds=0.01)}

    def run(self, first: int, last: int, *, assets=None) -> None:
        """billing_periods, then daily_usage → period_usage → stripe_push over the days of [first, last]."""
        assert dg.materialize([billing_periods], resources=self.resources()).success
        days = {RANGE_START: naive(first).strftime("%Y-%m-%d"), RANGE_END: naive(last).strftime("%Y-%m-%d")}
        result = dg.materialize(assets or [daily_usage, period_usage, stripe_push], resources=self.resources(),
                                tags=days, raise_on_error=False)
        assert result.success, "\n".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)

    def periods(self, customer: str = "cus_A") -> list[tuple]:
        return self.env.sql("SELECT period_start, period_end, source FROM billing_periods WHERE customer_ref = ? "
                            "ORDER BY period_start", [customer])

    def counters(self, customer: str = "cus_A") -> dict[tuple[datetime, datetime], int]:
        return {(s, e): int(v) for s, e, v in self.env.sql(
            "SELECT period_start, period_end, value FROM period_usage WHERE customer_ref = ? ORDER BY 1",
            [customer])}

    def invoices(self, customer: str = "cus_A") -> list[tuple[int, int, str, int]]:
        """(period start, end, status, quantity) of each invoice, oldest first."""
        out = []
        for invoice in self.client.v1.invoices.list({"customer": customer, "limit": 100}).data:
            (line,) = invoice.lines.data
            out.append((line.period.start, line.period.end, invoice.status, line.quantity))
        return sorted(out)


@pytest.fixture
def billing(env, monkeypatch):
    with EmulatorServer(now=ts("2025-01-10T08:00:00")) as emu:
        yield Billing(env, emu, monkeypatch)

