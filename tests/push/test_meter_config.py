"""Before sending, the push checks what Stripe would only report later
(DESIGN §4): the meter (exists, active, the formula the counter needs, no
event_time_window, its payload keys) and the customer. What fails is refused
with the reason and never sent."""

import pytest

from tests.push.conftest import DEFAULT_METERS


def _only(push):
    [intent] = push.pushes()
    return intent


def _mapped(push, event_name: str, metric: str = "api_calls") -> None:
    push.configure(meters=[{"tenant": "*", "metric": metric, "event_name": event_name}, *DEFAULT_METERS[1:]])


def test_a_count_meter_is_refused_because_it_would_bill_the_number_of_pushes(push):
    push.emu.create_meter("calls_counted", formula="count")
    _mapped(push, "calls_counted")
    push.usage(5)

    meta = push.metadata(push.run(expect_success=False))

    intent = _only(push)
    assert intent["status"] == "refused_meter_config" and "count" in intent["last_error"]
    assert meta["intents_refused_meter_config"] == 1
    assert push.event_posts() == []                       # never sent


@pytest.mark.parametrize("window", ["hour", "day"])
def test_a_pre_aggregated_meter_is_refused(push, window):
    push.emu.create_meter("calls_windowed", formula="sum", event_time_window=window)
    _mapped(push, "calls_windowed")
    push.usage(5)

    push.run(expect_success=False)

    intent = _only(push)
    assert intent["status"] == "refused_meter_config" and window in intent["last_error"]
    assert push.event_posts() == []


def test_a_max_counter_on_a_sum_meter_is_refused(push):
    push.configure(meters=[{"tenant": "*", "metric": "storage_gb", "event_name": "api_calls"}])
    push.usage(4, metric="storage_gb", aggregation="max")

    push.run(expect_success=False)

    intent = _only(push)
    assert intent["status"] == "refused_meter_config" and "'last'" in intent["last_error"]
    assert push.event_posts() == []


def test_an_inactive_meter_is_refused_and_the_counter_is_pushed_once_a_meter_is_active(push):
    meter = push.emu.create_meter("calls_v2")
    push.emu.deactivate_meter(meter["id"])
    _mapped(push, "calls_v2")
    push.usage(5)

    push.run(expect_success=False)

    assert _only(push)["status"] == "refused_meter_config" and push.event_posts() == []
    push.emu.state.set_meter_status(False, None, meter["id"], True)

    push.run()

    [intent] = push.pushes()                              # the refused row was replaced by the new plan
    assert intent["status"] == "acknowledged" and intent["revision"] == 2
    push.meter_ids[(False, None, "calls_v2")] = meter["id"]
    assert push.stripe_total("calls_v2") == 5


def test_custom_payload_keys_are_read_from_the_meter_and_used(push):
    meter = push.emu.create_meter("tokens", customer_key="account_ref", value_key="tokens_used")
    push.meter_ids[(False, None, "tokens")] = meter["id"]
    _mapped(push, "tokens")
    push.usage(5)

    push.run()

    [post] = push.event_posts()
    assert post["params"]["payload"] == {"account_ref": "cus_A", "tokens_used": "5"}
    assert push.stripe_total("tokens") == 5


def test_an_unknown_customer_is_refused_never_sent_and_pushed_once_it_exists(push):
    push.usage(5, customer="cus_NEW")  # not a customer on Stripe yet

    meta = push.metadata(push.run(expect_success=False))

    intent = _only(push)
    assert intent["status"] == "refused_unknown_customer" and "cus_NEW" in intent["last_error"]
    assert meta["intents_refused_unknown_customer"] == 1
    assert push.event_posts() == []
    assert push.env.sql("SELECT pushed_total FROM stripe_push_state") == [(0,)]
    push.emu.create_customer("cus_NEW")

    push.run()

    assert [r["status"] for r in push.pushes()] == ["acknowledged"]
    assert push.stripe_total(customer="cus_NEW") == 5
