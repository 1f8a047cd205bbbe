"""Shadow mode, dry-run, carry-forwards of closed periods, key hygiene and
pacing."""

import http.server
import json
import logging
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

from tests.push.conftest import LIVE_KEY, TEST_KEY

NOW_S = int(datetime(2025, 3, 20, 12, tzinfo=UTC).timestamp())
SHADOW_METERS = [{"tenant": "*", "metric": "api_calls", "event_name": "api_calls", "shadow": True}]


def test_shadow_mapping_pushes_only_with_the_test_key(push):
    push.stripe_scope(live=True)
    push.use_key("STRIPE_API_KEY", LIVE_KEY)
    push.use_key("STRIPE_TEST_API_KEY", TEST_KEY)
    push.configure(meters=SHADOW_METERS + [{"tenant": "*", "metric": "requests", "event_name": "requests"}])
    push.usage(5)
    push.usage(2, metric="requests", aggregation="count")

    meta = push.metadata(push.run())

    modes = {(r["params"]["event_name"], r["mode"]) for r in push.event_posts()}
    assert modes == {("api_calls", "test"), ("requests", "live")}
    assert push.stripe_total() == 5 and push.stripe_total(live=True) == 0
    assert meta["shadow"] == "test mode"


def test_shadow_mapping_without_a_test_key_refuses_and_sends_nothing(push):
    push.stripe_scope(live=True)
    push.use_key("STRIPE_API_KEY", LIVE_KEY)
    push.configure(meters=SHADOW_METERS)
    push.usage(5)

    meta = push.metadata(push.run())

    assert push.emu.requests() == []
    assert meta["intents_refused_shadow"] == 1 and meta["shadow"].startswith("refused")
    assert [r["status"] for r in push.pushes()] == ["refused_shadow"]


def test_shadow_mapping_refuses_a_live_key_given_as_the_test_key(push):
    push.use_key("STRIPE_TEST_API_KEY", LIVE_KEY)
    push.configure(meters=SHADOW_METERS)
    push.usage(5)

    meta = push.metadata(push.run())

    assert push.emu.requests() == [] and meta["intents_refused_shadow"] == 1
    assert "not a test-mode key" in meta["shadow"]


def test_dry_run_without_a_key_records_planned_and_sends_nothing(push):
    push.use_key("STRIPE_API_KEY", None)
    push.usage(5)
    meta = push.metadata(push.run())
    assert meta["dry_run"] is True and meta["intents_planned"] == 1
    push.usage(7)

    push.metadata(push.run())

    assert push.emu.requests() == []
    assert [(r["status"], r["value"]) for r in push.pushes()] == [("planned", 7)]  # replaced, not stacked
    assert push.env.sql("SELECT count(*) FROM stripe_push_state") == [(0,)]


def test_dry_run_option_sends_nothing_even_with_a_key(push):
    push.usage(5)

    meta = push.metadata(push.run(dry_run=True))

    assert push.emu.requests() == [] and meta["intents_planned"] == 1


def test_planned_intents_do_not_hold_back_the_real_push(push):
    push.use_key("STRIPE_API_KEY", None)
    push.usage(5)
    push.run()
    push.use_key("STRIPE_API_KEY", TEST_KEY)

    push.run()

    assert [r["status"] for r in push.pushes()] == ["acknowledged"]
    assert push.stripe_total() == 5


def _closed_february_change(push, delta="3"):
    """February closed (Mar 3 + 48 h < now); a late event changed its total."""
    feb = datetime(2025, 2, 1)
    push.usage(8, period=feb)
    push.env.sql("INSERT INTO period_adjustments VALUES ('acme', 'api_calls', 'cus_A', ?, 'sum', 5, 8, ?, "
                 "'carry_forward', 'open', NULL, '2025-03-20 11:00:00', 'run-1')", [feb, Decimal(delta)])


def test_closed_period_change_becomes_a_carry_forward_in_the_open_period(push):
    push.usage(5, period=datetime(2025, 2, 1))
    push.run("2025-02-01")                       # February's total at close went out in February
    _closed_february_change(push)
    feb_start, mar_start = (int(datetime(2025, m, 1, tzinfo=UTC).timestamp()) for m in (2, 3))

    meta = push.metadata(push.run("2025-02-01"))

    assert meta["carry_forwards_pushed"] == 1
    feb, carry = push.events()
    assert (feb["value"], carry["value"]) == (5, 3)
    assert feb_start <= feb["timestamp"] < mar_start <= carry["timestamp"] == NOW_S - 300
    assert push.stripe_total(start=feb_start, end=mar_start) == 5            # February untouched
    [row] = push.pushes("kind = 'carry_forward'")
    assert (row["period_start"], row["origin_period"]) == (datetime(2025, 3, 1), datetime(2025, 2, 1))
    assert push.env.sql("SELECT status, target_period FROM period_adjustments") == [
        ("pushed", datetime(2025, 3, 1))]
    assert push.env.sql("SELECT period_start, pushed_total, carried_in FROM stripe_push_state ORDER BY 1") == [
        (datetime(2025, 2, 1), 5, 0), (datetime(2025, 3, 1), 0, 3)]


def test_carry_forward_is_pushed_once_when_its_first_send_failed(push):
    _closed_february_change(push)
    push.emu.inject_fault("api_error", path_prefix="/v1/billing/meter_events", count=4)
    push.run("2025-02-01", max_attempts=2, expect_success=False)   # February's total and the carry-forward: pending
    assert push.env.sql("SELECT status FROM period_adjustments") == [("open",)]

    push.run()

    assert sorted(e["value"] for e in push.events()) == [3, 5]
    assert push.env.sql("SELECT status FROM period_adjustments") == [("pushed",)]


def test_hold_policy_adjustments_are_not_carried(push):
    _closed_february_change(push)
    push.env.sql("UPDATE period_adjustments SET policy = 'hold', status = 'held'")

    push.run("2025-02-01")

    assert [e["value"] for e in push.events()] == [5]   # February's total at close only


# Built at run time so no key-shaped literal sits in the repository.
PLANTED = "sk_live_" + "PLANTED" + "secret123abcdefXYZ"


def test_a_planted_key_appears_in_no_log_metadata_table_or_error(push, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    push.stripe_scope(live=True)
    push.use_key("STRIPE_API_KEY", PLANTED)
    push.usage(5)
    push.usage(3, customer="cus_B")
    ok = push.run()
    push.usage(9)
    push.emu.inject_fault("api_error", path_prefix="/v1/billing/meter_events", count=10)
    failed = push.run(max_attempts=2, expect_success=False)
    push.use_key("STRIPE_API_KEY", "PLANTEDsecret123-not-a-key")   # Stripe answers 401
    push.emu.clear_faults()

    refused = push.run(expect_success=False)

    assert push.stripe_total(live=True) == 5
    seen = [caplog.text, *capsys.readouterr()]
    for result in (ok, failed, refused):
        seen += [str(e) for e in result.all_events] + [repr(push.metadata(result))]
    seen += [repr(row) for table in ("stripe_pushes", "stripe_push_state", "stripe_push_adjustments")
             for row in push.env.sql(f"SELECT * FROM {table}")]
    seen += [repr(r) for r in push.emu.requests()]
    assert all("PLANTEDsecret123" not in text for text in seen)
    assert "APIError" in repr(push.metadata(failed))


def test_pacing_keeps_test_mode_under_80_percent_of_its_limit(push):
    push.emu.set_rate_limit(test=25)   # Stripe's documented test-mode limit
    customers = [f"cus_{i:02d}" for i in range(30)]
    for customer in customers:
        push.emu.create_customer(customer)
        push.usage(1, customer=customer)

    started = time.monotonic()
    push.run(pacing=True, max_attempts=1)
    elapsed = time.monotonic() - started

    posts = push.event_posts()
    assert len(posts) == 30 and all(p["status"] == 200 for p in posts)
    assert elapsed >= 29 / 20


class _EchoingStripe(http.server.BaseHTTPRequestHandler):
    """A worst-case Stripe that quotes the whole key back in its error."""

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"type": "invalid_request_error",
                                     "message": f"Invalid API Key provided: {key} (also rk_test_other123)"}})
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST  # noqa: N815  (the meter and customer checks read first)

    def log_message(self, *args):
        pass


def test_a_key_quoted_back_by_stripe_is_scrubbed_from_errors_tables_and_logs(push, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoingStripe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        push.monkeypatch.setenv("STRIPE_API_BASE", f"http://127.0.0.1:{server.server_address[1]}")
        push.use_key("STRIPE_API_KEY", PLANTED)
        push.usage(5)

        result = push.run(expect_success=False)
    finally:
        server.shutdown()
        server.server_close()

    [row] = push.pushes()
    assert row["status"] == "pending" and "Invalid API Key provided: [redacted]" in row["last_error"]
    seen = [caplog.text, *capsys.readouterr(), repr(row), repr(push.metadata(result))]
    seen += [str(e) for e in result.all_events]
    assert "[redacted]" in push.metadata(result)["errors"]
    leaks = [t for t in seen if "PLANTEDsecret123" in t or "rk_test_other123" in t]
    assert not leaks, [t[max(0, t.find("PLANTED") - 300):t.find("PLANTED") + 100] for t in leaks]


def test_the_original_stripemeters_key_names_are_accepted(push):
    push.use_key("STRIPE_API_KEY", None)
    push.use_key("STRIPE_SECRET_KEY", TEST_KEY)          # STRIPE_TEST_SECRET_KEY likewise for shadow
    push.use_key("STRIPE_TEST_SECRET_KEY", TEST_KEY)
    push.configure(meters=[{"tenant": "*", "metric": "api_calls", "event_name": "api_calls", "shadow": True},
                           {"tenant": "*", "metric": "requests", "event_name": "requests"}])
    push.usage(5)
    push.usage(2, metric="requests", aggregation="count")

    meta = push.metadata(push.run())

    assert meta["dry_run"] is False and meta["shadow"] == "test mode"
    assert push.stripe_total() == 5 and push.stripe_total("requests") == 2
