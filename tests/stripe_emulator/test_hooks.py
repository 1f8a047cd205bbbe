"""Test hooks (HTTP and Python), key hygiene and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest
import stripe

from stripemeter_assets.stripe_emulator import EmulatorServer, main

NOW = 1_773_576_000  # 2026-03-15T12:00:00Z
DAY0 = NOW - NOW % 86_400
PLANTED = "sk_test_PLANTEDk3y9f00d"
PLANTED_LIVE = "sk_live_PLANTEDl1v3f00d"
BAD_PLANTED = "sk_bogus_PLANTEDbadf00d"


@pytest.fixture
def emu():
    with EmulatorServer(now=NOW) as server:
        server.set_summary_lag(0)  # these tests read summaries right after the hooks
        yield server


def hook(emu, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def hook_text(emu, method, path, body=None):
    return json.dumps(hook(emu, method, path, body))


def client_for(emu, key="sk_test_emulator", **kw):
    return stripe.StripeClient(key, base_addresses={"api": emu.url}, max_network_retries=0, **kw)


def month_total(client, meter_id, customer="cus_A"):
    page = client.v1.billing.meters.event_summaries.list(
        meter_id, {"customer": customer, "start_time": DAY0 - 40 * 86_400, "end_time": DAY0 + 86_400}
    )
    return page.data[0].aggregated_value


def test_http_hooks_set_clock_and_create_customer_and_meter(emu):
    assert hook(emu, "POST", "/_emulator/clock", {"now": "2026-03-01T00:00:00Z"})["now"] == 1_772_323_200
    hook(emu, "POST", "/_emulator/customers", {"id": "cus_fixed", "livemode": False})
    meter = hook(emu, "POST", "/_emulator/meters", {"event_name": "api_calls", "id": "mtr_fixed"})
    client = client_for(emu)
    assert client.v1.customers.retrieve("cus_fixed").id == "cus_fixed"
    client.v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": "cus_fixed", "value": "3"}}
    )
    (event,) = hook(emu, "GET", "/_emulator/meter_events?livemode=false")["meter_events"]
    assert (meter["id"], event["meter"], event["timestamp"]) == ("mtr_fixed", "mtr_fixed", 1_772_323_200)


def test_http_hook_injects_a_fault(emu):
    hook(emu, "POST", "/_emulator/faults", {"kind": "api_error", "method": "GET", "path_prefix": "/v1/billing/meters"})
    assert len(hook(emu, "GET", "/_emulator/faults")["faults"]) == 1
    with pytest.raises(stripe.APIError):
        client_for(emu).v1.billing.meters.list()


def test_customer_hook_is_scoped_to_mode_and_account(emu):
    emu.create_customer("cus_A", livemode=True, account="acct_9")
    emu.connect_account("acct_9", livemode=False)
    with pytest.raises(stripe.InvalidRequestError):
        client_for(emu, stripe_account="acct_9").v1.customers.retrieve("cus_A")  # test mode
    live = client_for(emu, "sk_live_emulator", stripe_account="acct_9")
    assert live.v1.customers.retrieve("cus_A").livemode is True


def test_delete_hook_makes_usage_missing_on_the_stripe_side(emu):
    emu.create_customer("cus_A")
    meter = emu.create_meter("api_calls")
    client = client_for(emu)
    for i, value in enumerate((5, 7)):
        client.v1.billing.meter_events.create(
            {"event_name": "api_calls", "identifier": f"e{i}", "payload": {"stripe_customer_id": "cus_A", "value": str(value)}}
        )
    assert hook(emu, "POST", "/_emulator/meter_events/delete", {"identifier": "e1"}) == {"deleted": 1}
    assert month_total(client, meter["id"]) == 5


def test_cancel_hook_excludes_the_event_without_a_window_check(emu):
    emu.create_customer("cus_A")
    meter = emu.create_meter("api_calls")
    emu.add_meter_event("api_calls", "cus_A", 4, identifier="x", timestamp=NOW - 60)
    emu.advance_clock(3 * 86_400)
    assert emu.cancel_meter_event("x") is True
    assert month_total(client_for(emu), meter["id"]) == 0


def test_add_hook_adds_extra_usage_bypassing_validation(emu):
    emu.create_customer("cus_A")
    meter = emu.create_meter("api_calls")
    # 39 days old and 16 digits: the API would refuse both
    emu.add_meter_event("api_calls", "cus_A", 10**15 + 1, timestamp=DAY0 - 39 * 86_400)
    assert month_total(client_for(emu), meter["id"]) == 10**15 + 1
    (event,) = emu.meter_events()
    assert event["source"] == "emulator"


def test_reset_forgets_objects_events_faults_and_the_request_log(emu):
    emu.create_customer("cus_A")
    emu.create_meter("api_calls")
    emu.add_meter_event("api_calls", "cus_A", 1)
    emu.inject_fault("api_error")
    client_for(emu).v1.billing.meters.list()
    hook(emu, "POST", "/_emulator/reset")
    assert emu.meter_events() == [] and emu.requests() == [] and emu.faults_pending() == []
    assert client_for(emu).v1.billing.meters.list().data == []


def test_request_log_records_what_was_received(emu):
    emu.create_customer("cus_A")
    emu.create_meter("api_calls")
    emu.connect_account("acct_7")
    client_for(emu, stripe_account="acct_7").v1.billing.meters.list({"limit": 3})
    client_for(emu).v1.billing.meter_events.create(
        {"event_name": "api_calls", "payload": {"stripe_customer_id": "cus_A", "value": "2"}},
        {"idempotency_key": "ik-1"},
    )
    listed, created = emu.requests()
    assert (listed["method"], listed["path"], listed["params"], listed["account"], listed["status"]) == (
        "GET",
        "/v1/billing/meters",
        {"limit": "3"},
        "acct_7",
        200,
    )
    assert (created["idempotency_key"], created["mode"], created["params"]["payload"]["value"]) == ("ik-1", "test", "2")


def test_api_keys_never_appear_in_any_hook_output_or_error(emu):
    emu.create_customer("cus_A")
    emu.create_customer("cus_A", livemode=True)
    emu.create_meter("api_calls")
    emu.create_meter("api_calls", livemode=True)
    emu.inject_fault("api_error", path_prefix="/v1/billing/meter_events")
    texts = []
    for key in (PLANTED, PLANTED_LIVE):
        client = client_for(emu, key)
        for value in ("5", "1.5"):  # accepted, then a 400
            try:
                client.v1.billing.meter_events.create(
                    {"event_name": "api_calls", "payload": {"stripe_customer_id": "cus_A", "value": value}}
                )
            except stripe.StripeError as exc:
                texts.append(str(exc.json_body))
        client.v1.billing.meters.list()
    with pytest.raises(stripe.AuthenticationError) as info:
        client_for(emu, BAD_PLANTED).v1.billing.meters.list()
    texts.append(str(info.value.json_body))
    texts.append(str(info.value))
    texts += [
        hook_text(emu, "GET", "/_emulator/requests"),
        hook_text(emu, "GET", "/_emulator/meter_events?livemode=false"),
        hook_text(emu, "GET", "/_emulator/meter_events?livemode=true"),
        hook_text(emu, "GET", "/_emulator/faults"),
        hook_text(emu, "GET", "/_emulator/clock"),
        hook_text(emu, "GET", "/_emulator/rate_limit"),
        json.dumps(emu.requests()),
    ]
    assert len(emu.requests()) == 7  # the log really holds the requests...
    assert not [t for t in texts if "PLANTED" in t]  # ...but no key, valid or not


def test_emulator_server_refuses_a_non_loopback_host():
    with pytest.raises(ValueError):
        EmulatorServer(host="0.0.0.0")


def test_cli_refuses_a_non_loopback_host(capsys):
    assert main(["--host", "0.0.0.0", "--port", "0"]) == 2
    assert "127.0.0.1" in capsys.readouterr().err


def test_cli_prints_its_address_and_stops_on_sigterm():
    code = "import sys; from stripemeter_assets.stripe_emulator.server import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "STRIPEMETER_NOW": "2026-03-15T12:00:00Z"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("stripe emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        with urllib.request.urlopen(url + "/_emulator/clock") as response:
            assert json.loads(response.read()) == {"now": NOW, "frozen": True}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
