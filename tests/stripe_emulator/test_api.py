"""The emulator's Stripe API, driven through the real stripe SDK over HTTP."""

from __future__ import annotations

import pytest
import stripe

from stripemeter_assets.stripe_emulator import EmulatorServer

NOW = 1_773_576_000  # 2026-03-15T12:00:00Z, the frozen emulator clock
DAY = 86_400
HOUR = 3_600
DAY0 = NOW - NOW % DAY  # 2026-03-15T00:00:00Z


@pytest.fixture
def emu():
    with EmulatorServer(now=NOW) as server:
        # These tests are about aggregation, not Stripe's lag (tested on its own below).
        server.set_summary_lag(0)
        server.create_customer("cus_A")
        server.create_customer("cus_B")
        yield server


@pytest.fixture
def client(emu):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url}, max_network_retries=0)


def make_meter(client, event_name="api_calls", formula="sum"):
    return client.v1.billing.meters.create(
        {"display_name": event_name, "event_name": event_name, "default_aggregation": {"formula": formula}}
    )


@pytest.fixture
def meter(client):
    return make_meter(client)


def send(client, value, ts=NOW - 60, *, identifier=None, customer="cus_A", event_name="api_calls", options=None):
    params = {"event_name": event_name, "payload": {"stripe_customer_id": customer, "value": str(value)}, "timestamp": ts}
    if identifier is not None:
        params["identifier"] = identifier
    return client.v1.billing.meter_events.create(params, options)


def summaries(client, meter_id, start, end, *, customer="cus_A", window=None, **extra):
    params = {"customer": customer, "start_time": start, "end_time": end, **extra}
    if window:
        params["value_grouping_window"] = window
    return client.v1.billing.meters.event_summaries.list(meter_id, params)


def total(client, meter_id, start=DAY0 - 30 * DAY, end=DAY0 + DAY, customer="cus_A"):
    (only,) = summaries(client, meter_id, start, end, customer=customer).data
    return only.aggregated_value


# -- customers and meters ---------------------------------------------------------


def test_customer_created_through_api_gets_a_generated_id_and_can_be_retrieved(client):
    created = client.v1.customers.create({"name": "Acme"})
    assert created.id.startswith("cus_")
    assert client.v1.customers.retrieve(created.id).name == "Acme"


def test_retrieving_an_unknown_customer_is_resource_missing(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.retrieve("cus_nope")
    assert info.value.http_status == 404
    assert info.value.code == "resource_missing"


def test_customer_create_refuses_a_caller_chosen_id(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.customers.create({"id": "cus_mine"})
    assert info.value.code == "parameter_unknown"


def test_meter_create_then_list_and_retrieve(client):
    first = make_meter(client, "api_calls", "sum")
    second = make_meter(client, "seats", "last")
    listed = client.v1.billing.meters.list()
    assert [m.id for m in listed.data] == [second.id, first.id]  # newest first
    got = client.v1.billing.meters.retrieve(first.id)
    assert (got.event_name, got.default_aggregation.formula, got.status) == ("api_calls", "sum", "active")
    assert got.customer_mapping.event_payload_key == "stripe_customer_id"
    assert got.value_settings.event_payload_key == "value"


def test_meter_list_paginates_with_limit_and_starting_after(client):
    ids = [make_meter(client, f"m{i}").id for i in range(3)]
    page = client.v1.billing.meters.list({"limit": 2})
    assert page.has_more and [m.id for m in page.data] == ids[::-1][:2]
    assert [m.id for m in page.auto_paging_iter()] == ids[::-1]


def test_meter_event_name_is_unique_among_active_meters(client, meter):
    with pytest.raises(stripe.InvalidRequestError) as info:
        make_meter(client, "api_calls")
    assert info.value.param == "event_name"


def test_meter_formula_must_be_sum_count_or_last(client):
    with pytest.raises(stripe.InvalidRequestError) as info:
        make_meter(client, "x", "max")
    assert info.value.param == "default_aggregation[formula]"


# -- meter events -----------------------------------------------------------------


def test_meter_event_is_accepted_and_visible_in_a_summary(client, meter):
    event = send(client, 7, NOW - 120, identifier="evt-1")
    assert (event.object, event.identifier, event.timestamp) == ("billing.meter_event", "evt-1", NOW - 120)
    assert event.payload["value"] == "7"
    assert total(client, meter.id) == 7


def test_meter_event_without_identifier_gets_one_generated(client, meter):
    first, second = send(client, 1), send(client, 1)
    assert isinstance(first.identifier, str) and first.identifier
    assert first.identifier != second.identifier  # a generated identifier never dedupes a second event
    assert total(client, meter.id) == 2


def test_repeated_identifier_is_rejected_with_stripes_message(client, meter):
    send(client, 5, identifier="dup-1")
    with pytest.raises(stripe.InvalidRequestError) as info:
        send(client, 5, identifier="dup-1")
    assert info.value.user_message.startswith("An event already exists with identifier")
    assert info.value.code == "resource_already_exists"
    assert total(client, meter.id) == 5


def test_identifier_may_be_reused_after_24_hours(emu, client, meter):
    send(client, 5, identifier="again")
    emu.advance_clock(DAY)
    send(client, 6, emu.now() - 60, identifier="again")
    assert len(emu.meter_events()) == 2


def test_timestamp_older_than_35_days_is_rejected(client, meter):
    send(client, 1, NOW - 35 * DAY)  # the boundary itself is fine
    with pytest.raises(stripe.InvalidRequestError) as info:
        send(client, 1, NOW - 35 * DAY - 1)
    assert info.value.param == "timestamp"


def test_timestamp_more_than_5_minutes_ahead_is_rejected(client, meter):
    send(client, 1, NOW + 300)  # the boundary itself is fine
    with pytest.raises(stripe.InvalidRequestError) as info:
        send(client, 1, NOW + 301)
    assert info.value.param == "timestamp"


def error_report(emu, client, meter_id):
    """The newest error report Stripe published after the validation window (clock moved past it)."""
    emu.advance_clock(180)
    newest = client.v2.core.events.list({"object_id": meter_id}).data[0]
    return client.v2.core.events.retrieve(newest.id)


def reported(emu, client, meter_id):
    event = error_report(emu, client, meter_id)
    return [(t["code"], t["error_count"], [s["request"]["identifier"] for s in t["sample_errors"]])
            for t in event.data["reason"]["error_types"]]


def test_value_with_16_significant_digits_is_accepted_then_reported(emu, client, meter):
    send(client, 10**15 - 1, identifier="ok-15")  # 15 digits
    event = send(client, 10**15 + 1, identifier="bad-16")  # 16 digits: 200, validated later
    assert event.identifier == "bad-16"
    assert total(client, meter.id) == 10**15 - 1
    assert reported(emu, client, meter.id) == [("meter_event_invalid_value", 1, ["bad-16"])]

def test_fractional_value_is_accepted_then_reported(emu, client, meter):
    send(client, "1.5", identifier="frac")
    assert total(client, meter.id) == 0
    assert reported(emu, client, meter.id) == [("meter_event_invalid_value", 1, ["frac"])]

def test_negative_value_is_accepted_and_subtracts_in_a_sum_meter(client, meter):
    send(client, 10)
    send(client, -4)
    assert total(client, meter.id) == 6


def test_unknown_customer_is_accepted_then_reported_with_stripes_data_shape(emu, client, meter):
    send(client, 1, customer="cus_unknown", identifier="u-1")  # 200: Stripe validates asynchronously
    assert client.v2.core.events.list({"object_id": meter.id}).data == []   # nothing yet
    event = error_report(emu, client, meter.id)
    assert event.type == "v1.billing.meter.error_report_triggered"
    assert event.related_object.id == meter.id and event.related_object.type == "billing.meter"
    data = event.data
    assert data["reason"]["error_count"] == 1
    [kind] = data["reason"]["error_types"]
    assert kind["code"] == "meter_event_customer_not_found"
    assert kind["sample_errors"][0]["request"]["identifier"] == "u-1"
    assert "cus_unknown" in kind["sample_errors"][0]["error_message"]
    assert data["validation_start"] < data["validation_end"]
    assert emu.meter_events() == []


def test_error_reports_sample_identifiers_and_count_them_all(emu, client, meter):
    emu.configure_error_reports(sample_limit=2)
    for i in range(5):
        send(client, 1, customer="cus_unknown", identifier=f"u-{i}")
    [(code, count, named)] = reported(emu, client, meter.id)
    assert (code, count, len(named)) == ("meter_event_customer_not_found", 5, 2)


def test_missing_payload_keys_and_an_inactive_meter_are_reported(emu, client, meter):
    client.v1.billing.meter_events.create({"event_name": "api_calls", "payload": {"value": "1"}, "identifier": "n-c"})
    client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": "cus_A"}, "identifier": "n-v"})
    assert sorted(reported(emu, client, meter.id)) == [("meter_event_no_customer_defined", 1, ["n-c"]),
                                                       ("meter_event_value_not_found", 1, ["n-v"])]
    client.v1.billing.meters.deactivate(meter.id)
    send(client, 1, identifier="arch")
    assert reported(emu, client, meter.id) == [("archived_meter", 1, ["arch"])]

def test_event_name_without_any_meter_is_reported_as_no_meter_found(emu, client, meter):
    send(client, 1, event_name="no_such_meter", identifier="nm")
    emu.advance_clock(180)
    [thin] = client.v2.core.events.list().data
    event = client.v2.core.events.retrieve(thin.id)
    assert event.type == "v1.billing.meter.no_meter_found" and event.related_object is None
    assert event.data["reason"]["error_types"][0]["sample_errors"][0]["request"]["identifier"] == "nm"

def test_unknown_parameter_is_rejected(client, meter):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.billing.meter_events.create(
            {"event_name": "api_calls", "payload": {"stripe_customer_id": "cus_A", "value": "1"}, "quantity": 3}
        )
    assert info.value.code == "parameter_unknown"


# -- summaries ----------------------------------------------------------------------


def test_summary_times_must_be_minute_aligned(client, meter):
    with pytest.raises(stripe.InvalidRequestError) as info:
        summaries(client, meter.id, DAY0 + 30, DAY0 + HOUR)
    assert info.value.param == "start_time"
    with pytest.raises(stripe.InvalidRequestError) as info:
        summaries(client, meter.id, DAY0, DAY0 + HOUR + 1)
    assert info.value.param == "end_time"


def test_summary_window_includes_start_and_excludes_end(client, meter):
    start, end = DAY0 + HOUR, DAY0 + 2 * HOUR
    send(client, 1, start - 1)
    send(client, 10, start)
    send(client, 100, end - 1)
    send(client, 1000, end)
    assert total(client, meter.id, start, end) == 110


def test_summary_hour_grouping_returns_one_bucket_per_hour_newest_first(client, meter):
    send(client, 3, DAY0 + 5)
    send(client, 4, DAY0 + 2 * HOUR + 59)
    page = summaries(client, meter.id, DAY0, DAY0 + 3 * HOUR, window="hour")
    assert [(s.start_time, s.end_time, s.aggregated_value) for s in page.data] == [
        (DAY0 + 2 * HOUR, DAY0 + 3 * HOUR, 4),
        (DAY0 + HOUR, DAY0 + 2 * HOUR, 0),
        (DAY0, DAY0 + HOUR, 3),
    ]


def test_summary_day_grouping_returns_one_bucket_per_day_newest_first(client, meter):
    send(client, 2, DAY0 - DAY + 10)
    send(client, 9, DAY0 + 10)
    page = summaries(client, meter.id, DAY0 - DAY, DAY0 + DAY, window="day")
    assert [(s.start_time, s.aggregated_value) for s in page.data] == [(DAY0, 9), (DAY0 - DAY, 2)]


def test_summary_grouping_requires_bucket_aligned_times(client, meter):
    with pytest.raises(stripe.InvalidRequestError) as info:
        summaries(client, meter.id, DAY0 + 60, DAY0 + HOUR, window="hour")
    assert info.value.param == "start_time"


def test_summary_pages_follow_starting_after(client, meter):
    send(client, 1, DAY0 + 10)
    page = summaries(client, meter.id, DAY0 - 4 * DAY, DAY0 + DAY, window="day", limit=2)
    assert page.has_more and len(page.data) == 2
    assert [s.start_time for s in page.auto_paging_iter()] == [DAY0 - i * DAY for i in range(5)]


def test_summary_counts_only_the_requested_customer(client, meter):
    send(client, 5, customer="cus_A")
    send(client, 50, customer="cus_B")
    assert total(client, meter.id, customer="cus_B") == 50


def test_sum_formula_adds_values(client, meter):
    for value in (1, 2, 39):
        send(client, value)
    assert total(client, meter.id) == 42


def test_count_formula_counts_events(client):
    counted = make_meter(client, "logins", "count")
    for value in (5, 5, 100):
        send(client, value, event_name="logins")
    assert total(client, counted.id) == 3


def test_last_formula_takes_the_event_with_the_greatest_timestamp(client):
    seats = make_meter(client, "seats", "last")
    send(client, 30, NOW - 60, event_name="seats")
    send(client, 10, NOW - 600, event_name="seats")  # received later, but older
    assert total(client, seats.id) == 30


def test_last_formula_breaks_timestamp_ties_by_latest_received(client):
    seats = make_meter(client, "seats", "last")
    send(client, 30, NOW - 60, event_name="seats")
    send(client, 20, NOW - 60, event_name="seats")
    assert total(client, seats.id) == 20


def test_large_totals_are_exact_integers(client, meter):
    for _ in range(10):
        send(client, 999_999_999_999_999)
    send(client, 1)
    assert total(client, meter.id) == 9_999_999_999_999_991  # a float would say ...992


# -- adjustments -----------------------------------------------------------------------


def test_cancel_adjustment_removes_the_event_from_summaries(client, meter):
    send(client, 5, identifier="keep")
    send(client, 7, identifier="drop-me")
    adjustment = client.v1.billing.meter_event_adjustments.create(
        {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "drop-me"}}
    )
    assert (adjustment.object, adjustment.cancel.identifier) == ("billing.meter_event_adjustment", "drop-me")
    assert total(client, meter.id) == 5


def test_cancel_adjustment_of_unknown_identifier_is_rejected(client, meter):
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.billing.meter_event_adjustments.create(
            {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "never-sent"}}
        )
    assert info.value.param == "cancel[identifier]"


def test_cancel_adjustment_is_refused_24_hours_after_receipt(emu, client, meter):
    send(client, 5, identifier="old")
    emu.advance_clock(DAY + 1)
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.billing.meter_event_adjustments.create(
            {"event_name": "api_calls", "type": "cancel", "cancel": {"identifier": "old"}}
        )


# -- idempotency ------------------------------------------------------------------------


def test_idempotency_key_replays_the_first_response_without_double_counting(emu, client, meter):
    first = send(client, 5, identifier="i-1", options={"idempotency_key": "key-1"})
    again = send(client, 5, identifier="i-1", options={"idempotency_key": "key-1"})
    assert again.to_dict() == first.to_dict()
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert total(client, meter.id) == 5
    assert len(emu.meter_events()) == 1


def test_idempotency_key_reused_with_other_parameters_is_an_idempotency_error(client, meter):
    send(client, 5, identifier="i-1", options={"idempotency_key": "key-1"})
    with pytest.raises(stripe.IdempotencyError):
        send(client, 6, identifier="i-1", options={"idempotency_key": "key-1"})


def test_idempotency_key_expires_after_24_hours(emu, client, meter):
    send(client, 5, identifier="i-1", options={"idempotency_key": "key-1"})
    emu.advance_clock(DAY)
    fresh = send(client, 5, emu.now() - 60, identifier="i-2", options={"idempotency_key": "key-1"})
    assert fresh.last_response.headers.get("Idempotent-Replayed") is None
    assert len(emu.meter_events()) == 2


def test_parameter_errors_are_not_saved_under_the_idempotency_key(emu, client, meter):
    with pytest.raises(stripe.InvalidRequestError):
        send(client, 5, ts=NOW - 40 * DAY, identifier="i-1", options={"idempotency_key": "key-1"})
    send(client, 5, identifier="i-1", options={"idempotency_key": "key-1"})  # runs, not replayed
    assert len(emu.meter_events()) == 1

def test_live_and_test_state_are_separate(emu, client, meter):
    live = stripe.StripeClient("sk_live_emulator", base_addresses={"api": emu.url}, max_network_retries=0)
    emu.create_customer("cus_A", livemode=True)
    assert live.v1.billing.meters.list().data == []
    send(live, 1)  # the test-mode meter does not exist in live mode: accepted, then reported
    assert emu.meter_events(livemode=True) == []
    live_meter = make_meter(live)
    send(live, 9)
    send(client, 1)
    assert live_meter.livemode is True
    assert total(live, live_meter.id) == 9
    assert total(client, meter.id) == 1
    assert [e["value"] for e in emu.meter_events(livemode=True)] == [9]


def test_stripe_account_header_separates_state(emu, client, meter):
    emu.connect_account("acct_123")
    connected = stripe.StripeClient(
        "sk_test_emulator", base_addresses={"api": emu.url}, stripe_account="acct_123", max_network_retries=0
    )
    with pytest.raises(stripe.InvalidRequestError):
        connected.v1.customers.retrieve("cus_A")  # a platform customer
    emu.create_customer("cus_A", account="acct_123")
    other = make_meter(connected)
    send(connected, 4)
    assert total(connected, other.id) == 4
    assert total(client, meter.id) == 0
    assert [e["value"] for e in emu.meter_events(account="acct_123")] == [4]
    assert emu.meter_events() == []


def test_unknown_key_prefix_is_an_authentication_error(emu):
    bad = stripe.StripeClient("pk_test_notasecretkey", base_addresses={"api": emu.url}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as info:
        bad.v1.billing.meters.list()
    assert "notasecretkey" not in str(info.value.json_body)


def test_restricted_keys_select_the_mode_too(emu, meter):
    restricted = stripe.StripeClient("rk_test_emulator", base_addresses={"api": emu.url}, max_network_retries=0)
    assert [m.id for m in restricted.v1.billing.meters.list().data] == [meter.id]


def test_summaries_lag_received_events(emu, client, meter):
    emu.set_summary_lag(120)
    send(client, 5)
    assert total(client, meter.id) == 0          # eventually consistent: not there yet
    emu.advance_clock(119)
    assert total(client, meter.id) == 0
    emu.advance_clock(1)
    assert total(client, meter.id) == 5


@pytest.mark.parametrize("window", ["hour", "day"])
def test_a_pre_aggregated_meter_keeps_only_the_latest_event_of_each_window(emu, client, window):
    meter = emu.create_meter("windowed", formula="sum", event_time_window=window)
    for value, ts in ((5, DAY0 + 600), (7, DAY0 + 1200), (3, DAY0 - 600)):
        send(client, value, ts=ts, event_name="windowed")
    assert total(client, meter["id"]) == 7 + 3   # 5 then 7 in one window bills 7, not 12


def test_custom_payload_keys_are_read_from_the_meter(emu, client):
    meter = emu.create_meter("custom", customer_key="account_ref", value_key="tokens")
    client.v1.billing.meter_events.create(
        {"event_name": "custom", "payload": {"account_ref": "cus_A", "tokens": "4"}, "timestamp": NOW - 60})
    client.v1.billing.meter_events.create(
        {"event_name": "custom", "payload": {"stripe_customer_id": "cus_A", "value": "9"}, "identifier": "dflt"})
    assert total(client, meter["id"]) == 4
    assert reported(emu, client, meter["id"]) == [("meter_event_no_customer_defined", 1, ["dflt"])]


def test_an_account_the_key_is_not_connected_to_gets_403(emu, client, meter):
    other = stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url}, stripe_account="acct_unknown",
                                max_network_retries=0)
    with pytest.raises(stripe.PermissionError) as info:
        other.v1.billing.meters.list()
    assert info.value.http_status == 403
