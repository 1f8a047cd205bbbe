"""Invoice reconciliation through the real SDK against the emulator's invoices, run by Dagster."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest

from stripemeter_assets.invoices.assets import invoice_money_at_stake_within_tolerance, invoice_reconciliation
from stripemeter_assets.pricing import parse_price_config, price_line
from stripemeter_assets.settings import stripe_key_env_names
from tests.browser import dump_dom
from tests.periods.conftest import RANGE_END, RANGE_START, billing, naive, ts  # noqa: F401

ANCHOR = ts("2025-01-15T13:42:11")
NEXT = ts("2025-02-15T13:42:11")
HOUR = 3600

SHAPES = {
    "graduated": {"billing_scheme": "tiered", "tiers_mode": "graduated", "tiers": [
        {"up_to": 1000, "flat_amount": 500, "unit_amount": 0},
        {"up_to": 10000, "unit_amount_decimal": "0.8"},
        {"up_to": "inf", "unit_amount_decimal": "0.25", "flat_amount": 1000}]},
    "volume": {"billing_scheme": "tiered", "tiers_mode": "volume", "tiers": [
        {"up_to": 1000, "flat_amount": 900, "unit_amount_decimal": "1.1"},
        {"up_to": 10000, "flat_amount": 500, "unit_amount_decimal": "0.913"},
        {"up_to": "inf", "unit_amount_decimal": "0.333"}]},
    "package": {"unit_amount": 250, "transform_quantity": {"divide_by": 1000, "round": "up"}},
}


def reconcile(billing, day: int, *, expect_check: bool | None = None):
    result = dg.materialize([invoice_reconciliation, invoice_money_at_stake_within_tolerance],
                            resources=billing.resources(), partition_key=naive(day).strftime("%Y-%m-%d"),
                            raise_on_error=False)
    if expect_check is not None:
        [evaluation] = result.get_asset_check_evaluations()
        assert evaluation.passed is expect_check
    cols = [r[0] for r in billing.env.sql("SELECT column_name FROM (DESCRIBE invoice_reconciliation)")]
    return [dict(zip(cols, r)) for r in billing.env.sql(
        "SELECT * FROM invoice_reconciliation ORDER BY customer_ref, period_start")]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_preview_and_finalized_invoice_agree_with_the_local_amount_to_the_cent(billing, shape):
    price = billing.price(**SHAPES[shape])
    billing.subscribe("cus_A", price, anchor=ANCHOR)
    billing.set_now(NEXT - 2 * HOUR)
    billing.land(("cus_A", "12344", ANCHOR + 5), ("cus_A", "1", NEXT - 3 * HOUR))
    billing.run(ANCHOR, NEXT)
    expected = price_line(parse_price_config(billing.client.v1.prices.retrieve(
        price.id, {"expand": ["tiers"]}).to_dict()), Decimal(12345))

    [open_row] = [r for r in reconcile(billing, NEXT - 2 * HOUR) if r["period_start"] == naive(ANCHOR)]
    assert (open_row["invoice_status"], open_row["status"]) == ("preview", "ok")
    assert open_row["local_amount"] == open_row["stripe_amount"] == expected and open_row["money_at_stake"] == 0

    billing.set_now(NEXT + 2 * HOUR)  # finalized at NEXT + 1 h
    [final] = [r for r in reconcile(billing, NEXT - HOUR, expect_check=True) if r["period_start"] == naive(ANCHOR)]
    assert (final["invoice_status"], final["status"], final["currency"]) == ("open", "ok", "USD")
    assert final["invoice"].startswith("in_") and final["stripe_quantity"] == 12345
    assert final["local_amount"] == final["stripe_amount"] == expected


def test_customer_without_subscription_is_named_with_its_usage_and_money(billing):
    billing.subscribe("cus_A", billing.price(unit_amount=25), anchor=ANCHOR)
    billing.set_now(ANCHOR + 86400)
    billing.land(("cus_B", "40", ANCHOR + 60))
    billing.run(ANCHOR, ANCHOR + 86400)

    rows = reconcile(billing, ANCHOR, expect_check=False)
    [row] = [r for r in rows if r["customer_ref"] == "cus_B"]
    assert row["status"] == "no_subscription" and row["local_total"] == 40
    assert row["money_at_stake"] == Decimal("10.00") and row["currency"] == "USD"
    assert "billed to nobody" in row["cause"] and "40" in row["cause"]
    assert row["subscription_item"] is None


def test_without_a_key_counters_are_not_read_rather_than_without_subscription(billing, monkeypatch):
    """A dry run (no key) cannot know a customer's subscription: saying
    no_subscription would claim usage is billed to nobody."""
    billing.subscribe("cus_A", billing.price(unit_amount=25), anchor=ANCHOR)
    billing.set_now(ANCHOR + 86400)
    billing.land(("cus_A", "7", ANCHOR + 30), ("cus_B", "40", ANCHOR + 60))
    billing.run(ANCHOR, ANCHOR + 86400)
    for name in stripe_key_env_names():
        monkeypatch.delenv(name, raising=False)

    rows = {r["customer_ref"]: r for r in reconcile(billing, ANCHOR, expect_check=True)}
    # cus_A's billing period came from Stripe on an earlier run (compared in Python); cus_B has none (in SQL).
    assert {c: r["status"] for c, r in rows.items()} == {"cus_A": "not_read", "cus_B": "not_read"}
    assert all("no STRIPE_API_KEY is configured" in r["cause"] and r["money_at_stake"] == 0 for r in rows.values())


def test_usage_pushed_after_stripe_finalized_is_not_invoiced(billing):
    # The config believes in a 48 h grace; the account finalizes after 1 h.
    billing.configure(invoice_grace_hours=48)
    billing.subscribe("cus_A", billing.price(unit_amount=100), anchor=ANCHOR)
    billing.set_now(NEXT - HOUR)
    billing.land(("cus_A", "5", NEXT - 2 * HOUR))
    billing.run(ANCHOR, NEXT)
    billing.set_now(NEXT + 2 * HOUR)
    billing.land(("cus_A", "3", NEXT - 90 * 60))
    billing.run(NEXT - 86400, NEXT)

    [row] = [r for r in reconcile(billing, NEXT - HOUR, expect_check=False) if r["period_start"] == naive(ANCHOR)]
    assert row["status"] == "not_invoiced" and row["invoice_status"] == "open"
    assert (row["local_total"], row["stripe_quantity"]) == (8, 5)
    assert row["money_at_stake"] == Decimal("3.00")


def test_html_report_leads_with_money_at_stake_in_chromium(billing, tmp_path, monkeypatch):
    monkeypatch.setenv("STRIPEMETER_REPORTS", str(tmp_path / "reports"))
    billing.subscribe("cus_A", billing.price(unit_amount=25), anchor=ANCHOR)
    billing.set_now(ANCHOR + 86400)
    billing.land(("cus_B", "40", ANCHOR + 60), ("cus_A", "4", ANCHOR + 60))
    billing.run(ANCHOR, ANCHOR + 86400)
    reconcile(billing, ANCHOR)
    page = tmp_path / "reports" / f"invoice-reconciliation-{naive(ANCHOR):%Y-%m-%d}.html"

    dom = dump_dom(page.as_uri())
    assert dom.index('id="money-at-stake"') < dom.index('id="worst"')
    assert '<div id="money-at-stake">10.00 USD</div>' in dom
    worst = dom[dom.index('id="worst"'):]
    assert "cus_B" in worst and "no_subscription" in worst
    assert "http" not in Path(page).read_text()  # self-contained: no external assets
