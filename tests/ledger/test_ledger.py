"""The ledger: every event once, exact, bad input quarantined, batches atomic."""

import json
from decimal import Decimal

import pytest

from stripemeter_assets import warehouse as warehouse_module
from stripemeter_assets.ledger.keys import derive_key
from tests.conftest import event, utc

EVENTS = [
    event(quantity="5", ts="2025-03-10T10:00:00Z", idempotencyKey="k1"),
    event(quantity="2.5", ts="2025-03-10T11:00:00Z"),
    event(customer="cus_B", quantity="7", ts="2025-03-11T00:00:00+02:00", resourceId="seat-1"),
]


def _csv(events: list[dict]) -> str:
    cols = ["tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId"]
    lines = [",".join(cols)] + [",".join(e.get(c, "") for c in cols) for e in events]
    return "\n".join(lines) + "\n"


def test_same_events_in_every_format_load_once(env):
    env.drop_jsonl("a.jsonl", EVENTS)
    env.drop_jsonl("b.jsonl.gz", EVENTS, gz=True)
    env.drop_text("c.csv", _csv(EVENTS))
    env.drop_parquet("d.parquet", EVENTS)
    result = env.ingest()
    assert result.total("rows_total") == 12
    assert result.total("rows_loaded") == 3
    assert result.total("rows_duplicate") == 9
    assert env.sql("SELECT sum(quantity), count(*) FROM events") == [(Decimal("14.5"), 3)]


def test_redropped_file_and_overlapping_batch_add_nothing_twice(env):
    env.drop_jsonl("a.jsonl", EVENTS)
    env.ingest("b1")
    env.drop_jsonl("a-copy.jsonl", EVENTS)  # same bytes, new name
    env.drop_jsonl("b.jsonl", EVENTS[1:] + [event(quantity="100", ts="2025-03-12T00:00:00Z")])
    second = env.ingest("b2")
    statuses = {f.path.rsplit("/", 1)[-1]: f.status for f in second.files}
    assert statuses["a-copy.jsonl"] == "skipped"
    assert env.sql("SELECT count(*), sum(quantity) FROM events") == [(4, Decimal("114.5"))]
    assert env.sql("SELECT rows_loaded, rows_duplicate FROM landing_files WHERE path LIKE '%b.jsonl'") == [(1, 2)]


def test_explicit_keys_are_scoped_per_tenant(env):
    env.drop_jsonl("a.jsonl", [event(tenant="acme", idempotencyKey="same"),
                               event(tenant="globex", idempotencyKey="same")])
    env.ingest()
    assert env.sql("SELECT tenant_id FROM events ORDER BY 1") == [("acme",), ("globex",)]


@pytest.mark.parametrize("row, reason", [
    (event(customer=""), "missing_field"),
    ({"tenantId": "acme", "metric": "api_calls", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}, "missing_field"),
    (event(ts="10/03/2025"), "invalid_timestamp"),
    (event(ts="2025-03-20T14:00:00Z"), "future_timestamp"),  # now + 2 h, skew allows 1 h
    (event(quantity="ten"), "invalid_quantity"),
    (event(quantity="NaN"), "invalid_quantity"),
    (event(quantity="1.0000000001"), "invalid_quantity"),
    (event(quantity="-1"), "negative_quantity"),
    (event(tenant="t" * 129), "field_too_long"),
    (event(idempotencyKey="k" * 256), "field_too_long"),
    (event(quantity={"n": 1}), "invalid_type"),
    (event(tenant=42), "invalid_type"),
    ('{"tenantId": "acme", ', "invalid_json"),
    ("[1, 2, 3]", "invalid_json"),
])
def test_bad_rows_are_quarantined_with_their_reason(env, row, reason):
    good = event(quantity="3")
    env.drop_jsonl("a.jsonl", [good, row])
    result = env.ingest()
    assert result.total("rows_loaded") == 1
    rows = env.sql("SELECT source_file, row_number, reason, raw FROM quarantine")
    assert [(r[1], r[2]) for r in rows] == [(2, reason)]
    assert rows[0][0].endswith("a.jsonl") and rows[0][3]  # raw text kept


def test_same_key_with_different_payload_is_a_conflict_and_the_first_stays(env):
    env.drop_jsonl("a.jsonl", [event(quantity="5", idempotencyKey="k")])
    env.ingest("b1")
    env.drop_jsonl("b.jsonl", [event(quantity="6", idempotencyKey="k"), event(quantity="5", idempotencyKey="k")])
    env.ingest("b2")
    assert env.sql("SELECT quantity FROM events") == [(Decimal("5"),)]
    assert env.sql("SELECT row_number, reason FROM quarantine") == [(1, "idempotency_conflict")]
    assert env.sql("SELECT rows_duplicate, rows_quarantined FROM landing_files WHERE path LIKE '%b.jsonl'") == [(1, 1)]


def test_csv_row_with_extra_cells_is_quarantined_and_empty_cells_are_absent(env):
    env.drop_text("a.csv", "tenantId,metric,customerRef,quantity,ts,idempotencyKey\n"
                           "acme,api_calls,cus_A,1,2025-03-10T10:00:00Z,\n"
                           "acme,api_calls,cus_A,2,2025-03-10T10:00:00Z,k2,surplus\n")
    env.ingest()
    assert env.sql("SELECT key_derived FROM events") == [(True,)]
    assert env.sql("SELECT row_number, reason FROM quarantine") == [(3, "malformed_row")]


def test_unparseable_file_is_rejected_and_the_rest_of_the_batch_loads(env):
    env.drop_text("broken.parquet", "this is not parquet")
    (env.landing / "truncated.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    env.drop_jsonl("good.jsonl", [event()])
    result = env.ingest()
    statuses = {f.path.rsplit("/", 1)[-1]: f.status for f in result.files}
    assert statuses == {"broken.parquet": "rejected", "truncated.jsonl.gz": "rejected", "good.jsonl": "loaded"}
    assert env.sql("SELECT count(*) FROM events") == [(1,)]
    assert env.sql("SELECT count(*) FROM quarantine WHERE reason = 'unparseable_file'") == [(2,)]
    assert all(f.error for f in result.files if f.status == "rejected")


def test_a_failure_mid_batch_leaves_the_ledger_unchanged(env, monkeypatch):
    env.drop_jsonl("a.jsonl", [event(quantity="1")])
    env.ingest("b1")
    env.drop_jsonl("b.jsonl", [event(quantity="2", ts="2025-03-11T00:00:00Z"), event(customer="")])
    real = warehouse_module.run_script

    def failing(conn, name, **params):
        if name == "ledger/watermarks.sql":  # after events, quarantine and landing_files were written
            raise RuntimeError("injected crash")
        return real(conn, name, **params)

    monkeypatch.setattr("stripemeter_assets.ledger.batch.run_script", failing)
    before = env.sql("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine), "
                     "(SELECT count(*) FROM landing_files)")
    with pytest.raises(RuntimeError, match="injected crash"):
        env.ingest("b2")
    after = env.sql("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM quarantine), "
                    "(SELECT count(*) FROM landing_files)")
    assert after == before
    monkeypatch.setattr("stripemeter_assets.ledger.batch.run_script", real)
    env.ingest("b3")  # the same file loads once the fault is gone
    assert env.sql("SELECT count(*) FROM events") == [(2,)]


def test_offsets_and_z_give_the_same_utc_instant(env):
    env.drop_jsonl("a.jsonl", [event(ts="2025-03-10T12:30:00+02:00", idempotencyKey="a"),
                               event(ts="2025-03-10T10:30:00Z", idempotencyKey="b"),
                               event(ts="2025-03-10T05:30:00-05:00", idempotencyKey="c"),
                               event(ts="2025-03-10 10:30:00", idempotencyKey="d")])
    env.ingest()
    assert env.sql("SELECT DISTINCT ts FROM events") == [(utc("2025-03-10T10:30:00Z").replace(tzinfo=None),)]


def test_quantities_stay_exact_beyond_double_precision(env):
    env.drop_jsonl("a.jsonl", [
        '{"tenantId":"acme","metric":"api_calls","customerRef":"c1","quantity":12345678901234567890.123456789,"ts":"2025-03-10T10:00:00Z"}',
        '{"tenantId":"acme","metric":"api_calls","customerRef":"c2","quantity":1e3,"ts":"2025-03-10T10:00:00Z"}',
        '{"tenantId":"acme","metric":"api_calls","customerRef":"c3","quantity":"0.000000001","ts":"2025-03-10T10:00:00Z"}',
        '{"tenantId":"acme","metric":"api_calls","customerRef":"c4","quantity":1.5E-3,"ts":"2025-03-10T10:00:00Z"}',
    ])
    env.ingest()
    assert env.sql("SELECT customer_ref, quantity::VARCHAR FROM events ORDER BY 1") == [
        ("c1", "12345678901234567890.123456789"), ("c2", "1000.000000000"),
        ("c3", "0.000000001"), ("c4", "0.001500000")]


def test_derived_key_matches_the_python_derivation(env):
    env.drop_jsonl("a.jsonl", [event(quantity="100.50", ts="2025-03-10T12:30:00.123456+02:00", resourceId="r")])
    env.ingest()
    expected = derive_key("acme", "api_calls", "cus_A", "r", utc("2025-03-10T10:30:00.123456Z"), Decimal("100.5"))
    assert env.sql("SELECT idempotency_key, key_derived FROM events") == [(expected, True)]


def test_negative_quantities_land_only_for_metrics_that_allow_them(env):
    env.drop_jsonl("a.jsonl", [event(metric="credits", quantity="-3"), event(metric="api_calls", quantity="-3")])
    env.ingest()
    assert env.sql("SELECT metric, quantity FROM events") == [("credits", Decimal("-3"))]
    assert env.sql("SELECT reason FROM quarantine") == [("negative_quantity",)]


def test_key_hash_keeps_the_formula_earlier_ledgers_were_written_with(env):
    # Duplicates are found through events.key_hash; a ledger written by an
    # earlier version holds md5_number_lower values, so a new formula would
    # let every re-sent event of it through.
    env.drop_jsonl("a.jsonl", EVENTS)
    env.ingest("b1")
    assert env.sql("SELECT count(*) FROM events "
                   "WHERE key_hash = md5_number_lower(tenant_id || chr(31) || idempotency_key)") == [(3,)]
    env.drop_jsonl("b.jsonl", EVENTS + [event(quantity="9")])
    assert env.ingest("b2").total("rows_duplicate") == 3


def test_a_quarantined_parquet_row_keeps_exactly_the_files_columns(env):
    env.drop_parquet("a.parquet", [event(quantity="3"), event(quantity="ten", customer="cus_bad")])
    env.ingest()
    [(row_number, reason, raw)] = env.sql("SELECT row_number, reason, raw FROM quarantine")
    assert (row_number, reason) == (2, "invalid_quantity")
    assert json.loads(raw) == {**event(quantity="ten", customer="cus_bad"), "idempotencyKey": None, "resourceId": None}


def test_row_numbers_stay_exact_when_a_large_file_is_read_in_parallel(env):
    # Tens of MB make DuckDB split the file between threads; rows are numbered
    # from where they land, so every line must keep its own number.
    lines, bad = [], set()
    for n in range(1, 300_001):
        if n % 9973 == 0:
            lines.append("")
        elif n % 7919 == 0:
            bad.add(n)
            lines.append('{"tenantId": "acme", "broken": ' + str(n))
        else:
            lines.append(json.dumps(event(customer=f"line-{n}", quantity=str(n % 97), idempotencyKey=f"k{n}",
                                          meta={"pad": "x" * (n % 50)})))
    (env.landing / "big.jsonl").write_text("\n".join(lines) + "\n")
    env.ingest()
    assert env.sql("SELECT count(*) FROM events WHERE customer_ref <> 'line-' || row_number") == [(0,)]
    assert env.sql("SELECT count(*) FROM events") == [(len(lines) - len(bad) - 300_000 // 9973,)]
    quarantined = env.sql("SELECT row_number, reason, raw FROM quarantine ORDER BY 1")
    assert [(n, r) for n, r, _ in quarantined] == [(n, "invalid_json") for n in sorted(bad)]
    assert all(raw == lines[n - 1] for n, _, raw in quarantined)


def test_csv_row_numbers_stay_exact_when_a_large_file_is_read_in_parallel(env):
    rows, bad = ["tenantId,metric,customerRef,quantity,ts,idempotencyKey"], set()
    for r in range(2, 400_002):  # the header is row 1
        quantity = "ten" if r % 7919 == 0 else str(r % 97)
        if quantity == "ten":
            bad.add(r)
        rows.append(f"acme,api_calls,line-{r},{quantity},2025-03-10T10:00:00Z,k{r}")
    env.drop_text("big.csv", "\n".join(rows) + "\n")
    env.ingest()
    assert env.sql("SELECT count(*) FROM events WHERE customer_ref <> 'line-' || row_number") == [(0,)]
    assert env.sql("SELECT count(*) FROM events") == [(400_000 - len(bad),)]
    assert env.sql("SELECT row_number FROM quarantine ORDER BY 1") == [(r,) for r in sorted(bad)]
