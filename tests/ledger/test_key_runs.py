"""Dedupe against the whole ledger through event_keys' sorted runs: a key
from any earlier batch is found, whether it sits in a run or in the tail
not yet written to one, and a warehouse from before event_keys is migrated
in place."""

from decimal import Decimal

import pytest

from stripemeter_assets.ledger import key_runs
from tests.conftest import event


@pytest.fixture
def short_runs(monkeypatch):
    # A run per 3 events, so a handful of batches leaves several runs and a tail.
    monkeypatch.setattr(key_runs, "RUN_MIN_ROWS", 3)


def _keyed(key: str, quantity: str = "1", tenant: str = "acme") -> dict:
    return event(tenant=tenant, quantity=quantity, idempotencyKey=key)


def _conflicts(env) -> list[tuple]:
    return env.sql("SELECT idempotency_key, detail FROM quarantine WHERE reason = 'idempotency_conflict' ORDER BY 1")


def _uncovered(env) -> int:
    """Events neither in a run nor in the tail after compacted_through."""
    return env.sql("""SELECT count(*) FROM events e
                      WHERE e.seq <= (SELECT compacted_through FROM event_keys_state)
                        AND NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.seq = e.seq AND k.key_hash = e.key_hash)""")[0][0]


def test_keys_of_earlier_batches_are_found_in_the_runs_and_the_tail(env, short_runs):
    env.drop_jsonl("1.jsonl", [_keyed(f"k{i}") for i in range(1, 5)])
    env.ingest("b1")
    env.drop_jsonl("2.jsonl", [_keyed(f"k{i}") for i in range(5, 8)])
    env.ingest("b2")
    env.drop_jsonl("3.jsonl", [_keyed("k8")])
    env.ingest("b3")
    # Two runs (b1's 4 events, b2's 3); b3's event is the tail.
    assert env.sql("SELECT count(*) FROM event_keys") == [(7,)]
    assert env.sql("SELECT count(*) FROM events WHERE seq > (SELECT compacted_through FROM event_keys_state)") == [(1,)]
    assert _uncovered(env) == 0

    env.drop_jsonl("4.jsonl", [
        _keyed("k1"),                 # same event as in the first run: duplicate
        _keyed("k2", quantity="9"),   # other payload, first run: conflict
        _keyed("k6", quantity="9"),   # other payload, second run: conflict
        _keyed("k8"),                 # same event as in the tail: duplicate
        _keyed("k3", tenant="globex"),  # same key, other tenant: a new event
    ])
    result = env.ingest("b4")
    assert result.total("rows_loaded") == 1
    assert result.total("rows_duplicate") == 2
    conflicts = _conflicts(env)
    assert [k for k, _ in conflicts] == ["k2", "k6"]
    assert "1.jsonl row 2" in conflicts[0][1] and "2.jsonl row 2" in conflicts[1][1]
    assert env.sql("SELECT count(*), sum(quantity) FROM events") == [(9, Decimal("9"))]
    assert env.sql("SELECT count(*) FROM events WHERE tenant_id = 'globex'") == [(1,)]


def test_warehouse_without_event_keys_is_migrated_and_dedupes(env, short_runs):
    env.drop_jsonl("1.jsonl", [_keyed(f"k{i}") for i in range(1, 6)])
    env.ingest("b1")
    # The warehouse as it was before event_keys (and the schema fingerprint) existed.
    env.sql("DROP TABLE event_keys; DROP TABLE event_keys_state; DROP TABLE schema_fingerprint")

    env.drop_jsonl("2.jsonl", [_keyed("k1"), _keyed("k2", quantity="9"), _keyed("k9")])
    result = env.ingest("b2")
    assert (result.total("rows_loaded"), result.total("rows_duplicate")) == (1, 1)
    assert [k for k, _ in _conflicts(env)] == ["k2"]
    # The whole ledger is now in runs, and later batches find old keys there.
    assert env.sql("SELECT count(*) FROM event_keys") == [(6,)]
    assert _uncovered(env) == 0
    env.drop_jsonl("3.jsonl", [_keyed("k5"), _keyed("k4", quantity="2")])
    result = env.ingest("b3")
    assert (result.total("rows_loaded"), result.total("rows_duplicate")) == (0, 1)
    assert [k for k, _ in _conflicts(env)] == ["k2", "k4"]
    assert env.sql("SELECT count(*) FROM events") == [(6,)]


def test_schema_is_idempotent_on_a_migrated_warehouse(env, short_runs):
    env.drop_jsonl("1.jsonl", [_keyed(f"k{i}") for i in range(1, 5)])
    env.ingest("b1")
    before = env.sql("SELECT compacted_through FROM event_keys_state")
    env.sql("DELETE FROM schema_fingerprint")
    env.sql("SELECT 1")  # one more connection: the schema runs again
    assert env.sql("SELECT compacted_through FROM event_keys_state") == before
    assert before[0][0] > 0
