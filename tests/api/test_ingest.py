"""POST /v1/events/ingest against the real server: durable, deduplicated,
validated like the ingest, read back through the snapshot."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal


from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from tests.api.conftest import auth, http
from tests.conftest import event


def post(server, key, events, **headers):
    return http.post(server.url + "/v1/events/ingest", json={"events": events},
                     headers={**auth(key), **headers})


def test_ingested_events_reach_period_usage_and_the_usage_route(env, keys, server, instance):
    events = [event(customer="cus_A", quantity="2.5", ts="2025-03-10T10:00:00Z"),
              event(customer="cus_A", quantity="4", ts="2025-03-11T10:00:00Z"),
              event(customer="cus_A", metric="storage_gb", quantity="7", ts="2025-03-12T10:00:00Z"),
              event(customer="cus_B", quantity="1", ts="2025-03-12T10:00:00Z")]
    answer = post(server, keys["acme"], events)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 4, "rejected": []}
    assert not catch_up(defs, instance).failed

    usage = http.get(server.url + "/v1/usage/cus_A", params={"tenantId": "acme"}, headers=auth(keys["acme"]))
    assert usage.status_code == 200
    body = usage.json()
    assert body["asOf"] == "2025-03-20T12:00:00Z"
    got = {(u["metric"], Decimal(u["value"])) for u in body["usage"]}
    expected = {(m, v) for m, v in env.sql(
        "SELECT metric, value FROM period_usage WHERE tenant_id = 'acme' AND customer_ref = 'cus_A' "
        "AND period_start <= TIMESTAMP '2025-03-20 12:00' AND period_end > TIMESTAMP '2025-03-20 12:00'")}
    assert got == expected == {("api_calls", Decimal("6.5")), ("storage_gb", Decimal("7"))}

    listed = http.get(server.url + "/v1/events", params={"tenantId": "acme", "customerRef": "cus_A", "limit": 2},
                      headers=auth(keys["acme"])).json()
    assert listed["asOf"] == "2025-03-20T12:00:00Z"
    assert [e["ts"] for e in listed["data"]] == ["2025-03-12T10:00:00Z", "2025-03-11T10:00:00Z"]
    assert listed["data"][1]["quantity"] == "4"


def test_retried_requests_count_once_with_and_without_idempotency_key(env, keys, server, instance):
    keyless = [event(quantity="3", ts="2025-03-10T10:00:00Z")]
    keyed = [event(quantity="5", ts="2025-03-10T11:00:00Z", idempotencyKey="evt-1")]
    for _ in range(3):
        assert post(server, keys["acme"], keyless).json()["accepted"] == 1
        assert post(server, keys["acme"], keyed).json()["accepted"] == 1
    header = {"Idempotency-Key": str(uuid.uuid4())}
    first = post(server, keys["acme"], [event(quantity="11", ts="2025-03-10T12:00:00Z")], **header)
    again = post(server, keys["acme"], [event(quantity="11", ts="2025-03-10T12:00:00Z")], **header)
    assert first.json() == again.json() == {"accepted": 1, "rejected": []}
    assert again.headers.get("Idempotent-Replayed") == "true"
    # The replayed answer wrote no second file: 3 + 3 + 1 landing files.
    assert len(list(env.landing.glob("*.jsonl"))) == 7
    reused = post(server, keys["acme"], [event(quantity="12", ts="2025-03-10T12:00:00Z")], **header)
    assert reused.status_code == 422

    assert not catch_up(defs, instance).failed
    assert env.sql("SELECT sum(quantity), count(*) FROM events") == [(Decimal("19"), 3)]


def test_invalid_events_get_reasons_and_valid_ones_in_the_same_request_land(env, keys, server, instance):
    events = [
        event(quantity="1"),
        event(metric=""),                                   # missing_field
        event(quantity="abc"),                              # invalid_quantity
        event(quantity="-2"),                               # negative_quantity (api_calls)
        event(metric="credits", quantity="-2"),             # allowed: credits allow negatives
        event(ts="yesterday"),                              # invalid_timestamp
        event(ts="2025-03-21T12:00:00Z"),                   # future_timestamp (skew 1 h past the frozen now)
        event(customer="c" * 256),                          # field_too_long
        event(quantity=True),                               # invalid_type
        "not an object",                                    # invalid_json
        event(quantity=0.1, ts="2025-03-10T10:00:01Z"),     # a JSON number, read exactly
    ]
    answer = post(server, keys["acme"], events)
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 3
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (1, "missing_field"), (2, "invalid_quantity"), (3, "negative_quantity"), (5, "invalid_timestamp"),
        (6, "future_timestamp"), (7, "field_too_long"), (8, "invalid_type"), (9, "invalid_json")]

    env.ingest()
    assert sorted(env.sql("SELECT metric, quantity FROM events")) == [
        ("api_calls", Decimal("0.1")), ("api_calls", Decimal("1")), ("credits", Decimal("-2"))]
    assert env.sql("SELECT count(*) FROM quarantine") == [(0,)]  # the API let nothing through the ingest refuses


def test_bad_bodies_are_refused_with_a_reason(keys, server):
    bad = http.post(server.url + "/v1/events/ingest", content=b'{"events": [', headers=auth(keys["acme"]))
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
    shape = http.post(server.url + "/v1/events/ingest", json={"event": []}, headers=auth(keys["acme"]))
    assert shape.status_code == 400
    big = b'{"events": [' + b" " * (10 * 1024 * 1024) + b"]}"
    assert http.post(server.url + "/v1/events/ingest", content=big, headers=auth(keys["acme"]),
                     timeout=60).status_code == 413


def test_kill_9_right_after_an_answer_loses_nothing(env, keys, server, instance):
    accepted = 0
    for batch in range(5):
        events = [event(quantity="1", ts=f"2025-03-10T10:{batch:02d}:{i:02d}Z") for i in range(50)]
        accepted += post(server, keys["acme"], events).json()["accepted"]
    # An idempotent answer given just before the crash is replayed after it.
    header = {"Idempotency-Key": "last-before-crash"}
    last = post(server, keys["acme"], [event(quantity="100", ts="2025-03-11T00:00:00Z")], **header)
    assert last.status_code == 200
    server.kill()
    server.start()
    replayed = post(server, keys["acme"], [event(quantity="100", ts="2025-03-11T00:00:00Z")], **header)
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert json.loads(replayed.content) == last.json()

    assert not catch_up(defs, instance).failed
    assert env.sql("SELECT count(*), sum(quantity) FROM events") == [(accepted + 1, Decimal(accepted + 100))]


def test_concurrent_retries_with_one_idempotency_key_write_one_file(env, keys, server):
    from concurrent.futures import ThreadPoolExecutor

    body = [event(quantity=str(i), ts=f"2025-03-10T10:00:{i:02d}Z") for i in range(20)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(server, keys["acme"], body, **{"Idempotency-Key": "same"}), range(8)))
    assert {a.status_code for a in answers} == {200}
    assert {a.text for a in answers} == {'{"accepted":20,"rejected":[]}'}
    assert len(list(env.landing.glob("*.jsonl"))) == 1
