"""Counters on the customers' real billing periods, through the real SDK, the emulator's
subscriptions and invoices, and Dagster runs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import yaml

from stripemeter_assets.counters.assets import daily_usage, period_usage
from stripemeter_assets.projection.assets import cost_projection
from stripemeter_assets.counters.recompute import replay
from stripemeter_assets.settings import load_config
from stripemeter_assets.warehouse import connect
from tests.periods.conftest import naive, ts

ANCHOR = ts("2025-01-15T13:42:11")
NEXT = ts("2025-02-15T13:42:11")
AFTER = ts("2025-03-15T13:42:11")
CREATED = ts("2025-01-10T08:00:00")
HOUR = 3600


def test_anchor_on_the_15th_gives_counters_whose_edges_match_the_invoices_to_the_second(billing):
    billing.subscribe("cus_A", billing.price(), anchor=ANCHOR)
    billing.set_now(ANCHOR + 20 * 60)  # in the first period's 1 h grace
    billing.land(("cus_A", "5", ANCHOR - 1), ("cus_A", "7", ANCHOR))
    billing.run(CREATED, ANCHOR)
    billing.set_now(NEXT + 20 * 60)
    billing.land(("cus_A", "11", NEXT - 1), ("cus_A", "13", NEXT))
    billing.run(NEXT - 86400, NEXT)
    billing.set_now(NEXT + 2 * HOUR)  # both invoices finalized

    assert [p[:2] for p in billing.periods()] == [(naive(CREATED), naive(ANCHOR)), (naive(ANCHOR), naive(NEXT)),
                                                  (naive(NEXT), naive(AFTER))]
    assert {p[2] for p in billing.periods()} == {"stripe"}
    counters = billing.counters()
    assert counters == {(naive(CREATED), naive(ANCHOR)): 5, (naive(ANCHOR), naive(NEXT)): 18,
                        (naive(NEXT), naive(AFTER)): 13}
    invoices = billing.invoices()
    assert invoices == [(CREATED, ANCHOR, "open", 5), (ANCHOR, NEXT, "open", 18)]
    # Each invoice line covers exactly a counter's period and bills exactly its value.
    for start, end, _, quantity in invoices:
        assert counters[(naive(start), naive(end))] == quantity


def _late_event_after_period_end(billing, grace_hours: int):
    billing.configure(invoice_grace_hours=grace_hours)
    billing.emu.set_invoice_grace(grace_hours)
    billing.set_now(CREATED)
    billing.subscribe("cus_A", billing.price(), anchor=ANCHOR)
    billing.set_now(NEXT - HOUR)
    billing.land(("cus_A", "5", NEXT - 2 * HOUR))
    billing.run(CREATED, NEXT)
    billing.set_now(NEXT + 2 * HOUR)  # 2 h after period end
    billing.land(("cus_A", "3", NEXT - 90 * 60))
    billing.run(NEXT - 86400, NEXT)
    billing.set_now(AFTER + 73 * HOUR)  # every invoice involved is final
    return billing.invoices()


def test_usage_arriving_after_a_1h_grace_is_carried_to_the_next_invoice(billing):
    invoices = _late_event_after_period_end(billing, 1)
    by_period = {(s, e): q for s, e, _, q in invoices}
    assert by_period[(ANCHOR, NEXT)] == 5       # finalized before the late event arrived
    assert by_period[(NEXT, AFTER)] == 3        # carried forward, never lost
    [adjustment] = billing.env.sql("SELECT origin_period, delta, status FROM period_adjustments")
    assert adjustment == (naive(ANCHOR), 3, "pushed")


def test_usage_arriving_inside_a_48h_grace_lands_on_its_own_invoice(billing):
    invoices = _late_event_after_period_end(billing, 48)
    by_period = {(s, e): q for s, e, _, q in invoices}
    assert by_period[(ANCHOR, NEXT)] == 8
    assert by_period[(NEXT, AFTER)] == 0
    assert billing.env.sql("SELECT count(*) FROM period_adjustments") == [(0,)]


def test_customer_without_subscription_falls_back_to_calendar_months(billing):
    billing.subscribe("cus_A", billing.price(), anchor=ANCHOR)
    billing.set_now(ts("2025-01-20T00:00:00"))
    billing.land(("cus_B", "4", ts("2025-01-18T10:00:00")))
    billing.run(ts("2025-01-18T00:00:00"), ts("2025-01-18T00:00:00"))
    assert billing.periods("cus_B") == [(datetime(2025, 1, 1), datetime(2025, 2, 1), "calendar")]
    assert billing.counters("cus_B") == {(datetime(2025, 1, 1), datetime(2025, 2, 1)): 4}


def test_weekly_and_yearly_subscriptions(billing):
    billing.set_now(ts("2024-03-15T13:42:11"))
    billing.subscribe("cus_B", billing.price("year"))
    billing.set_now(ts("2025-02-01T00:00:00"))
    weekly_start = ts("2025-02-01T00:00:00")
    billing.subscribe("cus_A", billing.price("week"))
    week_end = weekly_start + 7 * 86400
    year_end = ts("2025-03-15T13:42:11")
    billing.set_now(week_end + 30 * 60)
    billing.land(("cus_A", "2", week_end - 1), ("cus_A", "3", week_end))
    billing.run(week_end - 86400, week_end)
    billing.set_now(year_end + 30 * 60)
    billing.land(("cus_B", "20", year_end - 1), ("cus_B", "30", year_end))
    billing.run(year_end - 86400, year_end)
    billing.set_now(year_end + 2 * HOUR)

    weekly = billing.counters("cus_A")
    assert weekly[(naive(weekly_start), naive(week_end))] == 2
    assert weekly[(naive(week_end), naive(week_end + 7 * 86400))] == 3
    yearly = billing.counters("cus_B")
    assert yearly == {(datetime(2024, 3, 15, 13, 42, 11), naive(year_end)): 20,
                      (naive(year_end), datetime(2026, 3, 15, 13, 42, 11)): 30}
    assert (weekly_start, week_end, "open", 2) in billing.invoices("cus_A")
    assert billing.invoices("cus_B")[0] == (ts("2024-03-15T13:42:11"), year_end, "open", 20)


def test_replay_across_a_period_edge_applies_late_events_to_each_side(billing):
    billing.configure(lateness_hours=1)
    cfg = {**yaml.safe_load(billing.env.config_path.read_text()), "lateness_hours": 1}
    billing.env.write_config(cfg)
    billing.subscribe("cus_A", billing.price(), anchor=ANCHOR)
    billing.set_now(NEXT + 3 * 86400)
    billing.land(("cus_A", "1", NEXT + 2 * 86400))
    billing.run(NEXT - 86400, NEXT + 2 * 86400)
    # Far beyond the 1 h window: stored, pending, not counted until replayed.
    billing.land(("cus_A", "5", NEXT - 1), ("cus_A", "7", NEXT))
    assert billing.env.sql("SELECT count(*) FROM late_events WHERE status = 'pending'") == [(2,)]

    with connect(str(billing.env.warehouse)) as conn:
        result = replay(conn, load_config(), naive(NEXT - 86400), naive(NEXT + 86400),
                        now=naive(NEXT + 3 * 86400), run_id="replay")
    diffs = {(d.period_start, d.old, d.new) for d in result.diffs}
    assert diffs == {(naive(ANCHOR), None, 5), (naive(NEXT), 1, 8)}



def test_cost_projection_uses_the_customers_period_and_stripe_price(billing):
    price = billing.price(billing_scheme="tiered", tiers_mode="graduated", tiers=[
        {"up_to": 100, "unit_amount": 0}, {"up_to": "inf", "unit_amount_decimal": "2.5"}])
    billing.subscribe("cus_A", price, anchor=ANCHOR)
    billing.set_now(ANCHOR + 10 * 86400)
    billing.land(("cus_A", "300", ANCHOR + 60))
    billing.run(ANCHOR, ANCHOR + 86400, assets=[daily_usage, period_usage, cost_projection])

    [(start, end, to_date, cost)] = billing.env.sql(
        "SELECT period_start, period_end, usage_to_date, cost_to_date FROM cost_projection WHERE customer_ref = 'cus_A'")
    assert (start, end) == (naive(ANCHOR), naive(NEXT))
    assert to_date == 300 and cost == Decimal("5.00")  # 200 units over the free 100, at 2.5 cents

