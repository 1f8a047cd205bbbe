"""Exactly once across crashes, rate limits, server errors and dropped
connections: Stripe's totals always end equal to the local totals."""

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from stripemeter_assets.analytics.snapshot import publish_snapshot
from stripemeter_assets.warehouse import connect
from tests import REPO_ROOT

NOW_S = int(datetime(2025, 3, 20, 12, tzinfo=UTC).timestamp())
EVENTS_PATH = "/v1/billing/meter_events"


def _statuses(push):
    return [r["status"] for r in push.pushes()]


def _push_killed_at(phase: str) -> subprocess.CompletedProcess:
    """A real process pushing 2025-03, SIGKILLed at `phase` (tests/push/_push_child.py)."""
    return subprocess.run([sys.executable, "-m", "tests.push._push_child", phase], cwd=REPO_ROOT,
                          capture_output=True, env=dict(os.environ), timeout=180)


@pytest.mark.parametrize("phase", ["planned", "sent", "sent#2", "recorded", "committed", "pulled"])
def test_a_push_killed_at_any_phase_then_rerun_ends_with_stripe_equal_to_the_ledger(push, phase):
    push.usage(5, customer="cus_A")
    push.usage(3, customer="cus_B")
    push.usage(4, metric="seats", aggregation="last")
    if phase == "pulled":      # a second run, killed right after it pulled Stripe's error reports
        push.run()
        push.usage(9, customer="cus_A")

    proc = _push_killed_at(phase)

    assert proc.returncode == -signal.SIGKILL, proc.stdout.decode()[-500:] + proc.stderr.decode()[-2000:]
    push.run()

    assert (push.stripe_total(customer="cus_A"), push.stripe_total(customer="cus_B"),
            push.stripe_total("seats")) == (9 if phase == "pulled" else 5, 3, 4)
    assert all(s == "acknowledged" for s in _statuses(push))
    values = sorted(e["value"] for e in push.events())
    assert values == ([3, 4, 4, 5] if phase == "pulled" else [3, 4, 5])     # each push exactly once
    assert push.env.sql("SELECT customer_ref, metric, coalesce(pushed_total, 0), last_value FROM stripe_push_state "
                        "ORDER BY 1, 2") == [("cus_A", "api_calls", 9 if phase == "pulled" else 5, None),
                                             ("cus_A", "seats", 0, 4), ("cus_B", "api_calls", 3, None)]


def test_accepted_event_whose_response_was_lost_counts_once(push):
    push.usage(5)
    push.emu.inject_fault("accept_then_drop", path_prefix=EVENTS_PATH, count=1)

    push.run()

    posts = push.event_posts()
    assert len(posts) == 2 and posts[1]["replayed"]          # the retry was answered from Stripe's records
    assert push.stripe_total() == 5 and len(push.events()) == 1


def test_rate_limit_storm_ends_with_exact_totals(push):
    for i, customer in enumerate(("cus_A", "cus_B")):
        push.usage(5 + i, customer=customer)
    push.emu.inject_fault("rate_limit", path_prefix=EVENTS_PATH, count=5)

    meta = push.metadata(push.run(max_attempts=8))

    assert meta["retries"] == 5
    assert sum(r["status"] == 429 for r in push.event_posts()) == 5
    assert (push.stripe_total(customer="cus_A"), push.stripe_total(customer="cus_B")) == (5, 6)


def test_server_error_storm_ends_with_exact_totals(push):
    push.usage(5)
    push.usage(4, metric="seats", aggregation="last")
    push.emu.inject_fault("api_error", path_prefix=EVENTS_PATH, count=4)
    push.emu.inject_fault("api_error", status=503, path_prefix=EVENTS_PATH, count=2)

    push.run(max_attempts=8)

    assert sum(r["status"] >= 500 for r in push.event_posts()) == 6
    assert (push.stripe_total(), push.stripe_total("seats")) == (5, 4)


def test_dropped_connections_end_with_exact_totals(push):
    push.usage(5)
    push.usage(7, customer="cus_B")
    push.emu.inject_fault("drop", path_prefix=EVENTS_PATH, count=2)
    push.emu.inject_fault("accept_then_drop", path_prefix=EVENTS_PATH, count=2)

    push.run(max_attempts=8)

    assert (push.stripe_total(customer="cus_A"), push.stripe_total(customer="cus_B")) == (5, 7)
    assert len(push.events()) == 2


def test_a_still_failing_intent_stays_pending_fails_the_run_and_goes_first_next_run(push):
    push.usage(5)
    push.emu.inject_fault("api_error", path_prefix=EVENTS_PATH, count=3)

    failed = push.run(max_attempts=3, expect_success=False)

    assert push.metadata(failed)["intents_pending_left"] == 1
    [intent] = push.pushes()
    assert (intent["status"], intent["attempts"]) == ("pending", 3)
    assert "APIError" in intent["last_error"]
    push.usage(9)  # more usage meanwhile: only the difference is planned on top of what is in flight

    push.run()

    posts = push.event_posts()
    assert {p["params"]["identifier"] for p in posts[:4]} == {intent["identifier"]}   # re-sent first, same id
    assert [e["value"] for e in push.events()] == [5, 4]
    assert push.stripe_total() == 9


def test_the_analyst_snapshot_shows_an_intent_acknowledged_after_it_was_published_pending(push, tmp_path):
    # The snapshot rewrites only the units of stripe_pushes whose rows changed; an outcome
    # recorded on an existing intent (no new row) must count as a change.
    analytics = str(tmp_path / "analytics.duckdb")
    push.usage(5)
    push.emu.inject_fault("api_error", path_prefix=EVENTS_PATH, count=3)
    push.run(max_attempts=3, expect_success=False)
    publish_snapshot(analytics_path=analytics)
    with connect(analytics, read_only=True) as snap:
        assert snap.execute("SELECT status, attempts FROM stripe_pushes").fetchall() == [("pending", 3)]

    push.run()
    publish_snapshot(analytics_path=analytics)

    with connect(analytics, read_only=True) as snap:
        assert snap.execute("SELECT status, attempts > 3 FROM stripe_pushes").fetchall() == [("acknowledged", True)]


def test_breaker_stops_sending_when_stripe_keeps_failing(push):
    for i in range(6):
        push.usage(1, customer=f"cus_{i}")
        push.emu.create_customer(f"cus_{i}")
    push.emu.inject_fault("api_error", path_prefix=EVENTS_PATH, count=100)

    meta = push.metadata(push.run(max_attempts=2, max_workers=1, expect_success=False))

    assert len(push.event_posts()) == 3 * 2   # three intents exhausted their retries, then nothing
    assert meta["intents_pending_left"] == 6


def test_pending_intent_older_than_23h_already_in_stripe_is_acknowledged_without_a_send(push):
    push.usage(5)
    # Stripe applies every attempt but the answer never arrives: delivered, yet pending here.
    push.emu.inject_fault("accept_then_drop", path_prefix=EVENTS_PATH, count=2)
    push.run(max_attempts=2, expect_success=False)
    assert _statuses(push) == ["pending"] and push.stripe_total() == 5
    push.set_now(NOW_S + 25 * 3600)  # Stripe forgot the identifier and the idempotency key
    sent_before = len(push.event_posts())

    meta = push.metadata(push.run())

    assert meta["intents_acknowledged_by_reconciliation"] == 1
    assert len(push.event_posts()) == sent_before         # not sent again
    assert push.stripe_total() == 5 and len(push.events()) == 1
    assert push.env.sql("SELECT pushed_total FROM stripe_push_state") == [(5,)]


def test_pending_intent_older_than_23h_missing_from_stripe_is_sent_again(push):
    push.usage(5)
    push.usage(2, customer="cus_B")
    push.run()
    push.usage(8)
    push.emu.inject_fault("drop", path_prefix=EVENTS_PATH, count=2)
    push.run(max_attempts=2, expect_success=False)
    push.set_now(NOW_S + 25 * 3600)

    meta = push.metadata(push.run())

    assert meta["intents_acknowledged_by_reconciliation"] == 0 and meta["intents_resent"] == 1
    assert push.stripe_total() == 8 and push.stripe_total(customer="cus_B") == 2


def test_the_23h_delivery_check_waits_for_settled_summaries_and_never_sends_twice(push):
    push.emu.set_summary_lag(30 * 60)                    # Stripe's summaries 30 min behind
    push.usage(4)
    # Delivered, but the answers are lost: pending here.
    push.emu.inject_fault("accept_then_drop", path_prefix=EVENTS_PATH, count=2)
    push.run(max_attempts=2, expect_success=False)
    t1 = NOW_S + 24 * 3600 + 55 * 60
    push.set_now(t1)
    # The old intent cannot be checked this run (a failed summaries read) while new usage is pushed.
    push.emu.inject_fault("api_error", method="GET", path_prefix="/v1/billing/meters/", count=1)
    push.usage(8)
    push.run(expect_success=False)
    assert sorted(r["status"] for r in push.pushes()) == ["acknowledged", "pending"]
    posts = len(push.event_posts())
    push.set_now(t1 + 5 * 60)                            # the new push is not in the summary yet

    push.run(expect_success=False)

    assert len(push.event_posts()) == posts              # not re-sent on a lagging summary
    [old] = push.pushes("status = 'pending'")
    assert "trusted only" in old["last_error"]
    push.set_now(t1 + 61 * 60)                           # settled

    meta = push.metadata(push.run())

    assert meta["intents_acknowledged_by_reconciliation"] == 1
    assert len(push.event_posts()) == posts
    assert push.stripe_total() == 8 and len(push.events()) == 2


def test_a_rate_limited_check_before_sending_is_retried_and_nothing_is_lost(push):
    push.usage(5)
    push.usage(3, customer="cus_B")
    push.emu.inject_fault("rate_limit", method="GET", path_prefix="/v1/", count=3)

    push.run(max_attempts=6)

    assert (push.stripe_total(customer="cus_A"), push.stripe_total(customer="cus_B")) == (5, 3)
    assert len(push.events()) == 2
