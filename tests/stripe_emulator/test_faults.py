"""Injected faults and the opt-in rate limiter, as the real stripe SDK experiences them."""

from __future__ import annotations

import threading
import time

import pytest
import stripe

from stripemeter_assets.stripe_emulator import EmulatorServer

NOW = 1_773_576_000  # 2026-03-15T12:00:00Z
EVENTS = "/v1/billing/meter_events"


@pytest.fixture
def emu():
    with EmulatorServer(now=NOW) as server:
        server.create_customer("cus_A")
        server.create_meter("api_calls", formula="sum", meter_id="mtr_test_api")
        yield server


def client_for(emu, retries=0, **kw):
    return stripe.StripeClient("sk_test_emulator", base_addresses={"api": emu.url}, max_network_retries=retries, **kw)


def send(client, value=5, identifier="evt-1", idempotency_key=None):
    return client.v1.billing.meter_events.create(
        {
            "event_name": "api_calls",
            "payload": {"stripe_customer_id": "cus_A", "value": str(value)},
            "identifier": identifier,
            "timestamp": NOW - 60,
        },
        {"idempotency_key": idempotency_key} if idempotency_key else None,
    )


def statuses(emu):
    return [(r["status"], r["fault"]) for r in emu.requests() if r["path"] == EVENTS]


def test_injected_429_surfaces_as_rate_limit_error(emu):
    emu.inject_fault("rate_limit", path_prefix=EVENTS)
    with pytest.raises(stripe.RateLimitError) as info:
        send(client_for(emu))
    assert info.value.http_status == 429 and info.value.error.code == "rate_limit"
    assert emu.meter_events() == []


def test_sdk_does_not_retry_a_rate_limit_429_by_itself(emu):
    emu.inject_fault("rate_limit", path_prefix=EVENTS)
    with pytest.raises(stripe.RateLimitError):
        send(client_for(emu, retries=2))
    assert statuses(emu) == [(429, "rate_limit")]


def test_injected_500_surfaces_as_api_error(emu):
    emu.inject_fault("api_error", path_prefix=EVENTS)
    with pytest.raises(stripe.APIError) as info:
        send(client_for(emu))
    assert info.value.http_status == 500
    assert emu.meter_events() == []


def test_an_injected_500_is_saved_under_its_key_and_replayed_to_the_sdks_retries(emu):
    # Stripe saves a 5xx for the idempotency key ("including 500 errors",
    # https://docs.stripe.com/api/idempotent_requests): the SDK's own retries
    # with the same key get the same 500; only a fresh key runs again.
    emu.inject_fault("api_error", path_prefix=EVENTS)
    with pytest.raises(stripe.APIError):
        send(client_for(emu, retries=2))
    posts = [r for r in emu.requests() if r["path"] == EVENTS]
    assert [(r["status"], r["replayed"]) for r in posts] == [(500, False), (500, True), (500, True)]
    assert len({r["idempotency_key"] for r in posts}) == 1
    assert emu.meter_events() == []
    event = send(client_for(emu, retries=0), idempotency_key="fresh-key")
    assert event.identifier == "evt-1" and len(emu.meter_events()) == 1


def test_sdk_retry_succeeds_after_a_lock_timeout(emu):
    emu.inject_fault("lock_timeout", path_prefix=EVENTS)
    send(client_for(emu, retries=2))
    assert statuses(emu) == [(429, "lock_timeout"), (200, None)]


def test_sdk_retry_succeeds_after_an_idempotency_conflict_409(emu):
    emu.inject_fault("idempotency_conflict", path_prefix=EVENTS)
    send(client_for(emu, retries=2))
    assert statuses(emu) == [(409, "idempotency_conflict"), (200, None)]


def test_dropped_connection_raises_api_connection_error_and_stores_nothing(emu):
    emu.inject_fault("drop", path_prefix=EVENTS)
    with pytest.raises(stripe.APIConnectionError):
        send(client_for(emu))
    assert emu.meter_events() == []


def test_accept_then_drop_leaves_the_event_stored(emu):
    emu.inject_fault("accept_then_drop", path_prefix=EVENTS)
    with pytest.raises(stripe.APIConnectionError):
        send(client_for(emu))
    assert [e["identifier"] for e in emu.meter_events()] == ["evt-1"]


def test_sdk_retry_after_accept_then_drop_is_replayed_not_double_counted(emu):
    emu.inject_fault("accept_then_drop", path_prefix=EVENTS)
    event = send(client_for(emu, retries=2))
    assert event.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(emu.meter_events()) == 1


def test_fault_applies_only_to_matching_method_and_path(emu):
    emu.inject_fault("api_error", method="POST", path_prefix=EVENTS, count=2)
    client = client_for(emu)
    assert client.v1.billing.meters.list().data  # GET elsewhere is untouched
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            send(client)
    send(client)  # the fault is used up
    assert emu.faults_pending() == []


def test_fault_can_target_one_stripe_account(emu):
    emu.create_customer("cus_A", account="acct_1")
    emu.create_meter("api_calls", account="acct_1")
    emu.inject_fault("api_error", path_prefix=EVENTS, account="acct_1")
    send(client_for(emu))  # platform: not affected
    with pytest.raises(stripe.APIError):
        send(client_for(emu, stripe_account="acct_1"))


def test_delay_longer_than_the_client_timeout_raises_api_connection_error(emu):
    emu.inject_fault("delay", path_prefix=EVENTS, delay=1.0)
    client = client_for(emu, http_client=stripe.RequestsClient(timeout=0.2))
    with pytest.raises(stripe.APIConnectionError):
        send(client)


def test_a_flat_rate_limit_override_returns_429_beyond_it(emu):
    emu.set_rate_limit(test=3)
    client = client_for(emu)
    for _ in range(3):
        client.v1.billing.meters.list()
    with pytest.raises(stripe.RateLimitError):
        client.v1.billing.meters.list()


def _one_second(emu):
    """Every request in the same second of the limiter's clock."""
    emu.limiter.clock = lambda: 0.0


def test_stripes_test_mode_limit_of_25_per_second_is_on_by_default(emu):
    _one_second(emu)
    client = client_for(emu)
    for _ in range(25):
        client.v1.billing.meters.list()
    with pytest.raises(stripe.RateLimitError) as info:
        client.v1.billing.meters.list()
    assert info.value.http_status == 429
    # Each account has its own limit.
    emu.connect_account("acct_other")
    client_for(emu, stripe_account="acct_other").v1.billing.meters.list()


def test_live_meter_events_have_1000_per_second_on_the_platform_but_count_as_basic_on_a_connected_account(emu):
    _one_second(emu)
    for account in (None, "acct_conn"):
        emu.create_customer("cus_A", livemode=True, account=account)
        emu.create_meter("api_calls", livemode=True, account=account)
    platform = stripe.StripeClient("sk_live_emulator", base_addresses={"api": emu.url}, max_network_retries=0)
    connected = stripe.StripeClient("sk_live_emulator", base_addresses={"api": emu.url}, max_network_retries=0,
                                    stripe_account="acct_conn")
    for i in range(150):   # beyond the basic 100: the platform's meter events have their own limit
        send(platform, identifier=f"p-{i}")
    for i in range(100):
        send(connected, identifier=f"c-{i}")
    with pytest.raises(stripe.RateLimitError):
        send(connected, identifier="c-100")   # the connected account's basic 100/s
    with pytest.raises(stripe.RateLimitError):
        connected.v1.billing.meters.list()     # ... which its meter events used up


def test_rate_limits_can_be_switched_off(emu):
    _one_second(emu)
    emu.set_rate_limit(stripe_limits=False)
    client = client_for(emu)
    for _ in range(40):  # beyond test mode's 25 per second
        client.v1.billing.meters.list()
    assert [r["status"] for r in emu.requests()] == [200] * 40

def test_opt_in_meter_event_concurrency_limit_rejects_a_parallel_call(emu):
    emu.set_rate_limit(meter_event_concurrency=True)
    emu.inject_fault("delay", path_prefix=EVENTS, delay=0.8)
    outcome = {}

    def slow():
        outcome["first"] = send(client_for(emu), identifier="slow")

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        for _ in range(200):  # wait until the slow call has taken its fault (it is in flight)
            if not emu.faults_pending():
                break
            threading.Event().wait(0.01)
        threading.Event().wait(0.1)
        with pytest.raises(stripe.RateLimitError):
            send(client_for(emu), identifier="parallel")
    finally:
        thread.join()
    assert outcome["first"].identifier == "slow"


def test_a_key_still_executing_gets_409_key_in_use_and_the_first_request_still_lands(emu):
    emu.inject_fault("delay", delay=1.0, path_prefix=EVENTS)
    first = threading.Thread(target=send, args=(client_for(emu),), kwargs={"idempotency_key": "k-1"})
    first.start()
    time.sleep(0.3)
    with pytest.raises(stripe.StripeError) as caught:
        send(client_for(emu), idempotency_key="k-1")
    first.join()
    # SDK 16 raises a v1 409 as APIError; the code is only in the error object.
    assert caught.value.http_status == 409 and caught.value.error.code == "idempotency_key_in_use"
    assert type(caught.value) is stripe.APIError
    assert len(emu.meter_events()) == 1
    replay = send(client_for(emu), idempotency_key="k-1")     # afterwards: Stripe's saved answer
    assert replay.identifier == "evt-1" and emu.requests()[-1]["replayed"]
