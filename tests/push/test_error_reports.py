"""Stripe answers 200 and validates meter events later (DESIGN §4): the push
pulls Stripe's meter error reports; intents they name are rejected_by_stripe,
stop counting as pushed, and their counters are pushed again once the cause
is fixed. Through the real SDK against the emulator's asynchronous validation."""

from stripemeter_assets.analytics.snapshot import publish_snapshot
from stripemeter_assets.warehouse import connect
from tests.push.conftest import client_delete_customer

NOW_S = 1742472000  # tests.conftest.NOW


def _after_reports(push, minutes: int = 5) -> None:
    """Time passes: Stripe publishes its error reports for the window."""
    push.set_now(NOW_S + minutes * 60)


def test_an_unknown_customers_usage_is_reported_never_counted_as_pushed_and_pushed_once_fixed(push):
    push.usage(5)
    push.run()
    client_delete_customer(push, "cus_A")       # deleted on Stripe after its first push
    push.usage(8)

    push.run()                                  # Stripe answers 200 for the 3 more ...

    assert [r["status"] for r in push.pushes()] == ["acknowledged", "acknowledged"]
    assert [e["value"] for e in push.events()] == [5]   # ... and drops them
    _after_reports(push)

    meta = push.metadata(push.run(expect_success=False))

    first, second, *again = push.pushes()
    assert (first["status"], second["status"]) == ("acknowledged", "rejected_by_stripe")
    assert second["last_error"].startswith("meter_event_customer_not_found")
    assert meta["intents_rejected_by_stripe"] == 1 and meta["stripe_error_reports"] == 1
    assert push.env.sql("SELECT pushed_total FROM stripe_push_state") == [(5,)]   # no longer counted
    assert push.env.sql("SELECT code, identifier FROM stripe_meter_errors") == [
        ("meter_event_customer_not_found", second["identifier"])]
    # Planned again, but held back before sending while the customer is unknown.
    assert [r["status"] for r in again] == ["refused_unknown_customer"]
    assert len(push.event_posts()) == 2
    push.emu.create_customer("cus_A")           # the cause is fixed

    push.run()

    assert push.pushes()[-1]["status"] == "acknowledged" and push.pushes()[-1]["value"] == 3
    assert push.stripe_total() == 8             # Stripe equals the ledger
    assert push.env.sql("SELECT pushed_total FROM stripe_push_state") == [(8,)]


def test_the_pull_resumes_from_its_cursor_and_stores_each_report_once(push):
    push.usage(5)
    push.run()
    client_delete_customer(push, "cus_A")
    push.usage(8)
    push.run()
    _after_reports(push)
    push.run(expect_success=False)
    _after_reports(push, 10)

    meta = push.metadata(push.run(expect_success=False))

    assert meta["stripe_error_reports"] == 0
    assert push.env.sql("SELECT count(*) FROM stripe_meter_errors") == [(1,)]
    assert push.env.sql("SELECT count(*) FROM stripe_meter_error_cursor WHERE meter LIKE 'mtr_%'") == [(1,)]


def test_the_analyst_snapshot_shows_an_intent_rejected_after_it_was_published_acknowledged(push, tmp_path):
    # Sent just before midnight, rejected by a report just after: the rejected intent's unit
    # of the snapshot (its creation day) gets no new row, only the changed one.
    analytics = str(tmp_path / "analytics.duckdb")
    push.set_now(NOW_S + 11 * 3600 + 57 * 60)        # 2025-03-20 23:57
    push.usage(5)
    push.run()
    client_delete_customer(push, "cus_A")
    push.usage(8)
    push.run()                                        # the +3 answered 200, dropped by Stripe
    publish_snapshot(analytics_path=analytics)
    push.set_now(NOW_S + 12 * 3600 + 5 * 60)          # 2025-03-21 00:05: the reports are out

    push.run(expect_success=False)
    publish_snapshot(analytics_path=analytics)

    with connect(analytics, read_only=True) as snap:
        statuses = snap.execute("SELECT created_at::DATE::VARCHAR, status FROM stripe_pushes "
                                "ORDER BY created_at, revision").fetchall()
    assert statuses == [("2025-03-20", "acknowledged"), ("2025-03-20", "rejected_by_stripe"),
                        ("2025-03-21", "refused_unknown_customer")]
