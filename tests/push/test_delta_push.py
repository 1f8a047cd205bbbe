"""The delta push through Dagster, the real stripe SDK and the emulator:
totals, deltas, values, scaling, timestamps, mapping."""

from datetime import UTC, datetime

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.push.assets import stripe_push
from stripemeter_assets.counters.recompute import recompute_days, recompute_periods
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.resources import StripeResource
from stripemeter_assets.warehouse import connect
from tests.conftest import event
from tests.push.conftest import APRIL_START, MARCH_START

NOW_S = int(datetime(2025, 3, 20, 12, tzinfo=UTC).timestamp())


def test_first_push_sends_each_counter_total(push):
    push.usage(5, customer="cus_A")
    push.usage(3, customer="cus_B")
    push.usage(7, metric="requests", customer="cus_A", aggregation="count")

    meta = push.metadata(push.run())

    assert (push.stripe_total("api_calls", "cus_A"), push.stripe_total("api_calls", "cus_B"),
            push.stripe_total("requests", "cus_A")) == (5, 3, 7)
    # 3 meter events + the checks before sending: 1 meter list, 2 customers (each once per run)
    assert meta["intents_acknowledged"] == 3 and meta["stripe_calls"] == 3 + 1 + 2
    assert push.env.sql("SELECT customer_ref, metric, pushed_total FROM stripe_push_state ORDER BY 1, 2") == [
        ("cus_A", "api_calls", 5), ("cus_A", "requests", 7), ("cus_B", "api_calls", 3)]


def test_second_run_with_nothing_new_sends_nothing(push):
    push.usage(5)
    push.run()
    before = len(push.emu.requests())

    meta = push.metadata(push.run())

    # Only reads: the meter list and its error reports (Stripe validates events later).
    assert [r for r in push.emu.requests()[before:] if r["method"] != "GET"] == []
    assert {r["path"].split("/")[1] + "/" + r["path"].split("/")[2] for r in push.emu.requests()[before:]} <= {
        "v1/billing", "v2/core"}
    assert meta["intents_sent"] == 0
    assert push.stripe_total() == 5


def test_new_events_send_exactly_the_delta(push):
    push.usage(5)
    push.run()
    push.usage(12)

    push.run()

    assert [e["value"] for e in push.events(event_name="api_calls")] == [5, 7]
    assert push.stripe_total() == 12


def test_a_lowered_total_sends_a_negative_delta(push):
    push.usage(10)
    push.run()
    push.usage(4)

    push.run()

    assert [e["value"] for e in push.events(event_name="api_calls")] == [10, -6]
    assert push.stripe_total() == 4


def test_total_returning_to_an_earlier_value_gets_a_new_identifier(push):
    push.usage(5)
    push.run()
    push.usage(8)
    push.run()
    push.usage(5)

    push.run()

    identifiers = [e["identifier"] for e in push.events(event_name="api_calls")]
    assert len(set(identifiers)) == 3 and all(i.startswith("smp_") and len(i) <= 100 for i in identifiers)
    assert push.stripe_total() == 5


def test_max_and_last_counters_push_values_with_increasing_timestamps(push):
    push.usage(30, metric="storage_gb", aggregation="max")
    push.usage(4, metric="seats", aggregation="last")
    push.run()
    push.set_now(NOW_S + 60)
    push.usage(45, metric="storage_gb", aggregation="max")
    push.usage(2, metric="seats", aggregation="last")
    push.run()
    push.set_now(NOW_S + 120)
    push.usage(2, metric="seats", aggregation="last")  # unchanged: nothing to push

    push.run()

    for event_name, values in (("storage_peak", [30, 45]), ("seats", [4, 2])):
        events = push.events(event_name=event_name)
        assert [e["value"] for e in events] == values
        assert events[0]["timestamp"] < events[1]["timestamp"] <= NOW_S + 60 - 300
    assert (push.stripe_total("storage_peak"), push.stripe_total("seats")) == (45, 2)


def test_fractional_metric_pushes_the_floor_of_the_scaled_total_exactly(push):
    totals = ["0.0004", "1.0009", "1.2345678", "2.9999999", "3.5"]  # unit_scale 1000: milli-units
    for total in totals:
        push.usage(total, metric="cpu_hours")
        push.run()

    values = [e["value"] for e in push.events(event_name="cpu_hours")]
    assert values == [1000, 234, 1765, 501]  # 0 first: nothing pushed; then floor(1000 × total) − pushed
    assert sum(values) == push.stripe_total("cpu_hours") == 3500


def test_fractional_events_through_the_counters_code_push_floor_of_scaled_sum(push):
    def ingest(name, quantities):
        push.env.drop_jsonl(name, [event(metric="cpu_hours", quantity=q, ts=f"2025-03-1{i}T10:00:00Z",
                                         idempotencyKey=f"{name}-{i}") for i, q in enumerate(quantities)])
        push.env.ingest(name)
        now = settings.now()
        with connect(str(push.env.warehouse)) as conn:
            recompute_days(conn, datetime(2025, 3, 1), datetime(2025, 4, 1), now)
            recompute_periods(conn, settings.load_config(), datetime(2025, 3, 1), datetime(2025, 4, 1), now, name)

    ingest("a.jsonl", ["0.3335", "0.3335", "0.3335"])   # 1.0005 → 1000
    push.run()
    ingest("b.jsonl", ["0.0006"])                         # 1.0011 → 1001
    push.run()

    assert [e["value"] for e in push.events(event_name="cpu_hours")] == [1000, 1]
    assert push.stripe_total("cpu_hours") == 1001


def test_event_timestamps_lie_in_the_period_at_least_five_minutes_before_now(push):
    push.usage(5, period=datetime(2025, 2, 1))  # a closed but recent period: its total at close
    push.usage(6)

    push.run("2025-02-01")
    push.run()

    feb, mar = push.events(event_name="api_calls")
    assert feb["timestamp"] == MARCH_START - 1
    assert MARCH_START <= mar["timestamp"] == NOW_S - 300 < APRIL_START


def test_a_period_older_than_stripe_accepts_is_skipped_and_reported(push):
    push.usage(5, period=datetime(2025, 1, 1))

    meta = push.metadata(push.run("2025-01-01"))

    assert meta["intents_skipped_too_old"] == 1
    assert push.event_posts() == []
    assert [r["status"] for r in push.pushes()] == ["skipped_too_old"]
    assert push.env.sql("SELECT count(*) FROM stripe_push_state") == [(0,)]


def test_a_period_that_began_less_than_five_minutes_ago_waits(push):
    push.set_now(int(datetime(2025, 4, 1, 0, 2, tzinfo=UTC).timestamp()))
    push.usage(5, period=datetime(2025, 4, 1))

    meta = push.metadata(push.run("2025-04-01"))

    assert meta["counters_deferred"] == 1 and push.event_posts() == []


def test_unmapped_counters_are_reported_not_pushed(push):
    push.configure(meters=[{"tenant": "acme", "metric": "api_calls", "event_name": "api_calls"}],
                   customers={"ext-42": "cus_B"})
    push.usage(5, customer="ext-42")              # mapped through stripe.customers
    push.usage(6, tenant="globex")                # no meter for this tenant
    push.usage(7, metric="requests")              # no meter for this metric
    push.usage(8, customer="someone-else")        # no Stripe customer

    meta = push.metadata(push.run())

    assert meta["unmapped_counters"] == 3
    assert "globex/api_calls/cus_A" in meta["unmapped_examples"]
    assert [(e["customer"], e["value"]) for e in push.events()] == [("cus_B", 5)]


def test_a_counter_too_large_for_a_meter_event_fails_the_push_by_name_and_the_others_are_pushed(push):
    push.usage(12)
    push.usage("1e20", customer="cus_B")                         # more units than a meter event carries
    push.usage("2e26", metric="cpu_hours", customer="cus_B")     # x1000 passes DECIMAL(38, 9)
    push.usage("2e26", metric="cpu_hours", customer="ext-9")     # unmapped: reported as such, no arithmetic

    result = push.run(expect_success=False)

    text, meta = push.failure_text(result), push.metadata(result)
    assert "too large" in text and "acme/api_calls/cus_B" in text and "acme/cpu_hours/cus_B" in text
    assert (meta["counters_too_large"], meta["unmapped_counters"]) == (2, 1)
    assert push.stripe_total() == 12
    assert [r["customer_ref"] for r in push.pushes()] == ["cus_A"]


def test_tenant_mapping_wins_over_the_wildcard(push):
    push.configure(meters=[{"tenant": "*", "metric": "api_calls", "event_name": "requests"},
                           {"tenant": "acme", "metric": "api_calls", "event_name": "api_calls"}])
    push.usage(5, tenant="acme")
    push.usage(6, tenant="globex", customer="cus_B")

    push.run()

    assert sorted((e["event_name"], e["value"]) for e in push.events()) == [("api_calls", 5), ("requests", 6)]


def test_connect_account_header_is_used_for_a_mapped_tenant(push):
    push.stripe_scope(account="acct_123")
    push.configure(accounts={"acme": "acct_123"})
    push.usage(5, tenant="acme")
    push.usage(6, tenant="globex", customer="cus_B")

    push.run()

    accounts = {(r["params"]["payload"]["stripe_customer_id"], r["account"]) for r in push.event_posts()}
    assert accounts == {("cus_A", "acct_123"), ("cus_B", None)}
    assert push.stripe_total(account="acct_123") == 5
    assert push.stripe_total(customer="cus_B") == 6
    assert push.env.sql("SELECT DISTINCT account FROM stripe_pushes ORDER BY 1") == [("acct_123",), ("platform",)]


def test_one_stripe_call_per_changed_counter_whatever_the_event_count(push):
    push.usage(10_000, count=10_000)
    push.usage(1, customer="cus_B")

    meta = push.metadata(push.run())

    assert len(push.event_posts()) == 2
    assert meta["stripe_calls"] == 2 + 1 + 2   # + one meter list and one look-up per customer


def test_backfill_over_two_periods_is_one_run_pushing_both(push):
    defs = dg.Definitions(assets=[stripe_push], jobs=[dg.define_asset_job("push_job", [stripe_push])],
                          resources={"warehouse": WarehouseResource(), "stripe": StripeResource(pacing=False)})
    push.usage(5, period=datetime(2025, 2, 1))
    push.usage(6)

    result = defs.resolve_job_def("push_job").execute_in_process(tags={
        "dagster/asset_partition_range_start": "2025-02-01", "dagster/asset_partition_range_end": "2025-03-01"})

    assert result.success
    mats = result.asset_materializations_for_node("stripe_push")
    # Day partitions: the range's days, and the two periods they touch, pushed in one run.
    assert len(mats) == 29 and {m.partition for m in mats} >= {"2025-02-01", "2025-02-14", "2025-03-01"}
    assert {m.metadata["period_starts"].value for m in mats} == {2}
    assert sorted(e["value"] for e in push.events()) == [5, 6]


def test_a_pushed_counter_whose_row_is_gone_counts_zero_and_is_pushed_back(push):
    push.usage(5, customer="cus_A")
    push.usage(3, customer="cus_B")
    push.run()
    assert push.stripe_total(customer="cus_A") == 5
    # A recomputation that no longer yields cus_A's counter (its usage moved to another period).
    push.env.sql("DELETE FROM period_usage WHERE customer_ref = 'cus_A'")

    push.run()

    assert push.stripe_total(customer="cus_A") == 0
    assert push.stripe_total(customer="cus_B") == 3
    assert [e["payload"]["value"] for e in push.events() if e["payload"]["stripe_customer_id"] == "cus_A"] == ["5", "-5"]
