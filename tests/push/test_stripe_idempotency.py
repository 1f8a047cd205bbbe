"""Stripe's idempotency edge cases (DESIGN §4): a key still in use answers 409
and the first request may still succeed; a 5xx is saved under its key and
replayed. Through the real SDK against the emulator."""

import time

EVENTS_PATH = "/v1/billing/meter_events"


def _wait_for_events(push, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(push.events()) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_timeout_then_409_keeps_the_intent_in_flight_and_stripe_ends_equal_to_the_ledger(push):
    push.usage(5)
    # Stripe is slow with the first request: the client times out and retries
    # with the same key while the first one is still executing.
    push.emu.inject_fault("delay", delay=1.5, path_prefix=EVENTS_PATH, count=1)

    first = push.run(timeout_seconds=0.3, max_attempts=3, expect_success=False)

    statuses = [r["status"] for r in push.event_posts()]
    assert 409 in statuses                                   # Stripe: idempotency_key_in_use
    [intent] = push.pushes()
    assert intent["status"] == "pending"                      # in flight, not failed, not re-planned
    assert push.metadata(first)["intents_failed"] == 0
    _wait_for_events(push, 1)                                # the first request completes on Stripe

    push.run()

    [again] = push.pushes()
    assert again["identifier"] == intent["identifier"] and again["status"] == "acknowledged"
    assert push.event_posts()[-1]["replayed"]                 # same key: Stripe's saved answer
    assert push.stripe_total() == 5 and len(push.events()) == 1
    assert push.env.sql("SELECT pushed_total FROM stripe_push_state") == [(5,)]


def test_a_saved_500_is_retried_with_a_fresh_key_and_the_same_identifier(push):
    push.usage(5)
    push.emu.inject_fault("api_error", path_prefix=EVENTS_PATH, count=1)

    push.run(max_attempts=3)

    posts = push.event_posts()
    assert [p["status"] for p in posts] == [500, 200]
    assert posts[0]["params"]["identifier"] == posts[1]["params"]["identifier"]
    assert posts[0]["idempotency_key"] != posts[1]["idempotency_key"]
    assert push.stripe_total() == 5


def test_a_500_replayed_in_the_next_run_does_not_stall_the_push(push):
    push.usage(5)
    push.emu.inject_fault("api_error", path_prefix=EVENTS_PATH, count=1)
    push.run(max_attempts=1, expect_success=False)           # left pending after Stripe's 500

    push.run(max_attempts=3)

    posts = push.event_posts()
    assert posts[1]["replayed"] and posts[1]["status"] == 500   # Stripe replays the saved 500 for the key
    assert posts[2]["status"] == 200 and posts[2]["idempotency_key"] != posts[0]["idempotency_key"]
    assert {p["params"]["identifier"] for p in posts} == {push.pushes()[0]["identifier"]}
    assert push.stripe_total() == 5 and len(push.events()) == 1
