"""Hostile landing files: random bytes, huge lines, deep JSON, non-finite and
oversized numbers, extreme years, odd Unicode, SQL metacharacters in fields
and in file names. Whatever comes in, each row lands exactly, is a counted
duplicate, or is quarantined with a reason (or the file is rejected with an
error); other files of the batch still load; no table is dropped."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from stripemeter_assets.counters.recompute import recompute_days, recompute_periods
from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from stripemeter_assets.settings import load_config
from stripemeter_assets.warehouse import literal
from stripemeter_assets.warehouse import connect, transaction
from tests.conftest import NOW, Env, event, utc
from tests.reliability.conftest import assert_ledger_consistent
from tests.reliability.ingest_check import Line, check_file

GOOD = [event(customer="cus_good", quantity=str(i), idempotencyKey=f"good-{i}") for i in range(1, 4)]


def _statuses(result) -> dict[str, str]:
    return {Path(f.path).name: f.status for f in result.files}


def _lines(env, name: str, lines: list[Line]) -> Path:
    path = env.landing / name
    path.write_bytes("".join(line.text + "\n" for line in lines).encode("utf-8", "surrogatepass"))
    return path


def _event_line(ev: dict, quantity_token: str | None = None, ascii_only: bool = True) -> Line:
    """A JSON line for `ev`; with `quantity_token`, the quantity is written as
    that bare JSON number."""
    if quantity_token is None:
        return Line(json.dumps(ev, ensure_ascii=ascii_only), ev)
    text = json.dumps({**ev, "quantity": "\x00Q"}, ensure_ascii=ascii_only).replace('"\\u0000Q"', quantity_token)
    return Line(text, {**ev, "quantity": quantity_token})


def _assert_good_file_loaded(env, result) -> None:
    assert _statuses(result)["good.jsonl"] == "loaded"
    assert env.sql("SELECT count(*) FROM events WHERE customer_ref = 'cus_good'") == [(len(GOOD),)]


# -- random bytes ------------------------------------------------------------------

SUFFIXES = [".jsonl", ".ndjson", ".jsonl.gz", ".csv", ".csv.gz", ".parquet"]


@hsettings(max_examples=10, deadline=None, database=None, derandomize=True,
           suppress_health_check=list(HealthCheck))
@given(blobs=st.lists(st.tuples(st.sampled_from(SUFFIXES), st.binary(min_size=0, max_size=3000),
                                st.sampled_from(["raw", "gzip", "parquet-magic", "bom-header"])),
                      min_size=1, max_size=3))
def test_files_of_random_bytes_never_stop_the_batch(tmp_path_factory, blobs):
    with pytest.MonkeyPatch.context() as mp:
        env = Env(tmp_path_factory.mktemp("bytes"), mp)
        for i, (suffix, data, wrap) in enumerate(blobs):
            if wrap == "gzip":
                data = gzip.compress(data)
            elif wrap == "parquet-magic":
                data = b"PAR1" + data + b"PAR1"
            elif wrap == "bom-header":
                data = "\ufefftenantId,metric,customerRef,quantity,ts\n".encode() + data
            (env.landing / f"blob{i}{suffix}").write_bytes(data)
        env.drop_jsonl("good.jsonl", GOOD)
        result = env.ingest()
        _assert_good_file_loaded(env, result)
        assert all(f.status in ("loaded", "rejected") for f in result.files)
        assert_ledger_consistent(env)


def test_random_bytes_with_record_separators_and_nuls_are_rejected_or_quarantined(env):
    junk = bytes(range(256)) * 20 + b"\x1e\x00\xff\xfe" * 100
    for suffix in SUFFIXES:
        (env.landing / f"junk{suffix}").write_bytes(junk)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    _assert_good_file_loaded(env, result)
    assert env.sql("SELECT count(*) FROM events") == [(len(GOOD),)]
    assert_ledger_consistent(env)


# -- huge lines --------------------------------------------------------------------

def test_a_20_mb_line_is_handled_and_the_other_files_of_the_batch_load(env):
    huge = {**event(customer="cus_huge", idempotencyKey="huge"), "meta": {"blob": "x" * (20 << 20)}}
    before, after = event(customer="before", idempotencyKey="before"), event(customer="after", idempotencyKey="after")
    lines = [Line(json.dumps(before), before), Line(json.dumps(huge), huge), Line(json.dumps(after), after)]
    path = _lines(env, "huge.jsonl", lines)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest("b1")
    _assert_good_file_loaded(env, result)
    if check_file(env, path, lines, "b1") == "rejected":
        [f] = [f for f in result.files if f.path == str(path)]
        assert "line" in f.error.lower()  # the error says why: the line is too long
    assert_ledger_consistent(env)


def test_a_line_just_under_the_reader_limit_with_a_field_too_long_is_quarantined_with_its_text(env):
    big = event(customer="c" * (15 << 20), idempotencyKey="big-customer")
    lines = [Line(json.dumps(big)), Line(json.dumps(GOOD[0]), GOOD[0])]
    path = _lines(env, "big.jsonl", lines)
    env.ingest("b1")
    assert check_file(env, path, lines, "b1") == "loaded"
    assert env.sql("SELECT reason, length(raw) FROM quarantine") == [("field_too_long", len(lines[0].text))]


def test_a_csv_cell_longer_than_the_reader_limit_does_not_stop_the_batch(env):
    text = ("tenantId,metric,customerRef,quantity,ts\n"
            f"acme,api_calls,{'c' * (17 << 20)},1,2025-03-10T10:00:00Z\n"
            "acme,api_calls,cus_small,1,2025-03-10T10:00:00Z\n")
    env.drop_text("huge.csv", text)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    _assert_good_file_loaded(env, result)
    assert _statuses(result)["huge.csv"] in ("loaded", "rejected")
    assert_ledger_consistent(env)


# -- deep JSON ---------------------------------------------------------------------

@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deeply_nested_meta_is_kept_verbatim_or_quarantined(env, depth):
    meta = '{"a":' * depth + "1" + "}" * depth
    line = ('{"tenantId":"acme","metric":"api_calls","customerRef":"cus_deep","quantity":1,'
            f'"ts":"2025-03-10T10:00:00Z","idempotencyKey":"deep","meta":{meta}}}')
    env.drop_text("deep.jsonl", line + "\n")
    env.drop_text("deep.csv", "tenantId,metric,customerRef,quantity,ts,idempotencyKey,meta\n"
                              f'acme,api_calls,cus_deep_csv,1,2025-03-10T10:00:00Z,deep-csv,"{meta.replace(chr(34), 2 * chr(34))}"\n')
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    _assert_good_file_loaded(env, result)
    for customer in ("cus_deep", "cus_deep_csv"):
        stored = env.sql("SELECT meta::VARCHAR FROM events WHERE customer_ref = ?", [customer])
        if stored:
            assert stored == [(meta,)]
    assert_ledger_consistent(env)


# -- numbers -----------------------------------------------------------------------

FORTY_DIGITS = "1234567890123456789012345678901234567890"


@pytest.mark.parametrize("token", [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E39", FORTY_DIGITS, "-" + FORTY_DIGITS,
    FORTY_DIGITS + ".5", "123456789012345678901234567890",  # 30 integer digits
    '"NaN"', '"Infinity"', '"-Infinity"', '"inf"', '"1e400"', f'"{FORTY_DIGITS}"', '"0x10"',
    '"1.0000000001"', '" "', '"1,5"', "true", "[1]",
])
def test_non_finite_and_oversized_quantities_are_quarantined_as_invalid(env, token):
    text = json.dumps(event(idempotencyKey="q")).replace('"quantity": "1"', f'"quantity": {token}')
    env.drop_text("q.jsonl", text + "\n")
    env.ingest()
    [(reason,)] = env.sql("SELECT reason FROM quarantine")
    if token in ("NaN", "Infinity", "-Infinity"):  # not JSON at all
        assert reason in ("invalid_quantity", "invalid_json")
    elif token in ('" "', "true", "[1]"):
        assert reason in ("invalid_quantity", "invalid_type", "missing_field")
    else:
        assert reason == "invalid_quantity", f"{token} quarantined as {reason}"
    assert env.sql("SELECT count(*) FROM events") == [(0,)]


@pytest.mark.parametrize("token", ["99999999999999999999999999999.999999999", "-0", "0e-20", "1.500000000000e2",
                                   "0.000000001", "12345678901234567890123456789"])
def test_extreme_but_valid_quantities_land_exactly(env, token):
    line = _event_line(event(metric="credits", idempotencyKey="q"), token)
    path = _lines(env, "q.jsonl", [line])
    env.ingest("b1")
    assert check_file(env, path, [line], "b1") == "loaded"
    assert env.sql("SELECT quantity FROM events") == [(Decimal(token),)]


@pytest.mark.parametrize("token, exact", [
    ("30517578.124999999", "30517578.124999999"),  # 9 fractional digits: valid; its double is 30517578.125
    ("0.30000000000000001", None),                 # 17 fractional digits: invalid; its double prints as 0.3
    ("2.0000000000000001", None),
    ("1.00000000000000001e3", None),               # 1000.00000000000001
    ("9007199254740993", "9007199254740993"),       # 2**53 + 1
])
def test_bare_number_quantities_are_stored_exactly_or_quarantined_never_rounded(env, token, exact):
    env.drop_text("q.jsonl", json.dumps(event(idempotencyKey="q")).replace('"quantity": "1"', f'"quantity": {token}') + "\n")
    env.ingest()
    stored = env.sql("SELECT quantity FROM events")
    if exact is None:
        assert stored == [] and env.sql("SELECT reason FROM quarantine") == [("invalid_quantity",)], stored
    else:
        assert stored == [(Decimal(exact),)]


def test_a_meta_field_named_quantity_never_changes_or_rejects_the_event(env):
    # The top-level quantity has more digits than a double holds, so the reader
    # looks for its exact text; meta carries another number with the same double.
    line = ('{"tenantId":"acme","metric":"api_calls","customerRef":"cus_A","quantity":12345678901234567,'
            '"ts":"2025-03-10T10:00:00Z","idempotencyKey":"m","meta":{"quantity":12345678901234568}}')
    env.drop_text("m.jsonl", line + "\n")
    env.ingest()
    assert env.sql("SELECT reason, detail FROM quarantine") == []
    assert env.sql("SELECT quantity FROM events") == [(Decimal("12345678901234567"),)]


def test_huge_valid_quantities_of_one_tenant_never_stop_other_tenants_counters(env):
    env.drop_jsonl("a.jsonl", [
        event(tenant="mallory", customer="cus_M", quantity="99999999999999999999999999999", idempotencyKey="m1"),
        event(tenant="mallory", customer="cus_M", quantity="99999999999999999999999999999", idempotencyKey="m2",
              ts="2025-03-11T10:00:00Z"),
        event(tenant="mallory", customer="cus_M", quantity="99999999999999999999999999999", idempotencyKey="m3",
              ts="2025-03-11T11:00:00Z"),
        event(tenant="alice", customer="cus_A", quantity="5", idempotencyKey="a1"),
        event(tenant="alice", customer="cus_A", quantity="7", idempotencyKey="a2", ts="2025-03-11T10:00:00Z"),
    ])
    env.ingest()
    now, config = utc(NOW), load_config()
    with connect(str(env.warehouse)) as conn, transaction(conn):
        recompute_days(conn, datetime(2025, 3, 1), datetime(2025, 4, 1), now)
        recompute_periods(conn, config, datetime(2025, 3, 1), datetime(2025, 4, 1), now, "t")
    assert env.sql("SELECT value, event_count FROM period_usage WHERE tenant_id = 'alice'") == [(Decimal(12), 2)]


# -- timestamps --------------------------------------------------------------------

@pytest.mark.parametrize("ts, outcome", [
    ("0001-01-01T00:00:00Z", "loaded"),
    ("0001-01-01T00:00:00.000001+00:00", "loaded"),
    ("1970-01-01T00:00:00Z", "loaded"),
    ("9999-12-31T23:59:59.999999Z", "future_timestamp"),
    ("9999-12-31T23:59:59-23:59", "future_timestamp"),
    ("10000-01-01T00:00:00Z", "invalid_timestamp"),
    ("-0001-01-01T00:00:00Z", "invalid_timestamp"),
    ("2025-02-29T00:00:00Z", "invalid_timestamp"),
    ("2025-03-10T24:00:01Z", "invalid_timestamp"),
    ("2025-03-10T10:00:00+24:00", "invalid_timestamp"),  # RFC 3339 offsets stop at 23:59
    ("2025-03-10T10:00:00+23:60", "invalid_timestamp"),
    ("2025-03-10T10:00:00-99:99", "invalid_timestamp"),
])
def test_timestamps_at_the_ends_of_the_calendar(env, monkeypatch, ts, outcome):
    # Partitions from year 1, so the oldest instants are counted, not out of range.
    monkeypatch.setenv("STRIPEMETER_PARTITIONS_START", "0001-01-01")
    line = _event_line(event(ts=ts, idempotencyKey="t"))
    path = _lines(env, "t.jsonl", [line] + [_event_line(g) for g in GOOD])
    env.ingest("b1")
    if outcome == "loaded":
        assert check_file(env, path, [line] + [_event_line(g) for g in GOOD], "b1") == "loaded"
        assert env.sql("SELECT ts FROM events WHERE idempotency_key = 't'")[0][0] == utc(ts).replace(tzinfo=None)
    else:
        assert env.sql("SELECT row_number, reason FROM quarantine") == [(1, outcome)]
    assert env.sql("SELECT count(*) FROM events WHERE customer_ref = 'cus_good'") == [(len(GOOD),)]


@pytest.mark.parametrize("ts", ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2023-12-31T23:59:59.999999Z"])
def test_a_timestamp_before_the_first_partition_is_quarantined_naming_the_start(env, ts):
    # No counter could ever count it: a silent ledger row would be usage shown nowhere.
    env.drop_jsonl("z.jsonl", [event(ts=ts, idempotencyKey="z"), event(ts="2024-01-01T00:00:00Z", idempotencyKey="y")])
    env.ingest()
    assert env.sql("SELECT idempotency_key FROM events") == [("y",)]
    [(reason, detail)] = env.sql("SELECT reason, detail FROM quarantine")
    assert reason == "timestamp_out_of_range"
    assert "2024-01-01" in detail and ts[:10] in detail


@pytest.mark.parametrize("ts", ["0001-01-01T00:00:00Z", "2020-06-01T00:00:00Z"])
def test_an_event_older_than_the_partitions_never_wedges_catch_up(env, instance, ts):
    """Such an event is quarantined (timestamp_out_of_range); the watermark
    sensor must not turn its day into a run request for a partition that
    does not exist (which raises in the sensor tick, before the cursor is
    saved, so every later catch-up would fail the same way)."""
    env.drop_jsonl("a.jsonl", [event(tenant="ancient", ts=ts, idempotencyKey="old"),
                               event(tenant="alice", quantity="5", idempotencyKey="a1")])
    catch_up(defs, instance)
    env.drop_jsonl("b.jsonl", [event(tenant="alice", quantity="7", idempotencyKey="a2", ts="2025-03-11T10:00:00Z")])
    catch_up(defs, instance)
    assert env.sql("SELECT value FROM period_usage WHERE tenant_id = 'alice'") == [(Decimal(12),)]
    assert env.sql("SELECT count(*) FROM events WHERE tenant_id = 'ancient'") == [(0,)]
    assert env.sql("SELECT reason FROM quarantine") == [("timestamp_out_of_range",)]


# -- Unicode, control characters, SQL metacharacters -------------------------------

NASTY = [
    "\u202eevil\u202c",            # RTL override
    "\u200f\u200e",                # RTL / LTR marks
    "👩\u200d👩\u200d👧\u200d👦",   # ZWJ sequence
    "e\u0301\u0301\u0301",         # combining marks
    "\ufeffbom",
    "a\u0000b",                    # NUL (escaped in JSON)
    "".join(chr(c) for c in range(1, 32)),  # every C0 control (escaped in JSON)
    "\u007f\u0085\u2028\u2029",
    "\U0010ffff\U0001f4a9",
    "'; DROP TABLE events; --",
    '"); DELETE FROM quarantine; --',
    "\\",
    "\\\\'\\\"",
    "{{rows}}",
    "$now $batch_id ? %s",
    "%' OR '1'='1",
    "\x1e\x1f",                    # the reader's record separator and the key's field separator
]
STRING_FIELDS = ("tenantId", "metric", "customerRef", "idempotencyKey", "resourceId")


def _nasty_events() -> list[dict]:
    rows = []
    for i, text in enumerate(NASTY):
        for field in STRING_FIELDS:
            ev = event(customer=f"cus_{i}", quantity=str(i + 1), idempotencyKey=f"k-{i}-{field}",
                       resourceId=f"r{i}", meta={"note": text, text: [text]})
            ev[field] = text if field != "idempotencyKey" else f"{text}-{i}"
            rows.append(ev)
        rows.append(event(customer=f"derived-{text}", quantity=str(i + 1), resourceId=text))  # derived key
    return rows


@pytest.mark.parametrize("ascii_only", [True, False], ids=["escaped", "utf8"])
def test_odd_unicode_control_and_sql_characters_in_every_field_round_trip_exactly(env, ascii_only):
    lines = [_event_line(ev, ascii_only=ascii_only) for ev in _nasty_events()]
    path = _lines(env, "nasty.jsonl", lines)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest("b1")
    _assert_good_file_loaded(env, result)
    assert check_file(env, path, lines, "b1") == "loaded"
    assert env.sql("SELECT count(*) FROM quarantine") == [(0,)]
    assert_ledger_consistent(env)


def test_escaped_lone_surrogates_are_quarantined_not_loaded_mangled(env):
    lines = [Line('{"tenantId":"acme","metric":"api_calls","customerRef":"x\\ud800y","quantity":1,'
                  '"ts":"2025-03-10T10:00:00Z","idempotencyKey":"s1"}'),
             Line('{"tenantId":"acme","metric":"api_calls","customerRef":"x","quantity":1,'
                  '"ts":"2025-03-10T10:00:00Z","idempotencyKey":"s2\\udfff"}'),
             Line('{"tenantId":"acme","metric":"api_calls","customerRef":"x","quantity":1,'
                  '"ts":"2025-03-10T10:00:00Z","idempotencyKey":"s3","meta":{"k":"\\udc00"}}')]
    path = _lines(env, "surrogates.jsonl", lines)
    env.drop_jsonl("good.jsonl", GOOD)
    env.ingest("b1")
    assert check_file(env, path, lines, "b1") == "loaded"
    assert env.sql("SELECT row_number, reason FROM quarantine WHERE source_file = ? ORDER BY 1", [str(path)]) == [
        (1, "invalid_json"), (2, "invalid_json"), (3, "invalid_json")]
    assert env.sql("SELECT count(*) FROM events WHERE source_file = ?", [str(path)]) == [(0,)]


def test_raw_control_characters_inside_json_strings_are_quarantined_or_kept_exactly(env):
    lines = []
    for c in [0x01, 0x08, 0x0b, 0x0c, 0x1b, 0x7f]:
        ev = event(customer=f"cus{chr(c)}x", idempotencyKey=f"raw-{c}")
        lines.append(Line(json.dumps(ev).replace("\\u00" + f"{c:02x}", chr(c)), ev))
    path = _lines(env, "raw.jsonl", lines)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest("b1")
    _assert_good_file_loaded(env, result)
    # A raw control character makes the line invalid JSON; if the reader is
    # lenient the event must still round-trip exactly.
    for line in lines:
        line.event = line.event if env.sql("SELECT 1 FROM events WHERE idempotency_key = ?",
                                           [line.event["idempotencyKey"]]) else None
    check_file(env, path, lines, "b1")


def test_odd_characters_round_trip_through_csv_and_parquet(env):
    # NUL has no place in CSV text; line breaks inside cells have their own test.
    events = [ev for ev in _nasty_events()
              if not any(c in str(v) for v in ev.values() for c in "\x00\n\r")]
    cols = ["tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(cols)
    for ev in events:
        writer.writerow([ev.get(c, "") for c in cols])
    env.drop_text("nasty.csv", buf.getvalue())
    _write_parquet(env.landing / "nasty.parquet", events)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    statuses = {Path(f.path).name: (f.status, f.rows_loaded, f.rows_duplicate, f.rows_quarantined)
                for f in result.files}
    # CSV strips nothing but the BOM of the header; an empty cell is absent.
    # Every event is in both files, so the second one holds only duplicates.
    assert statuses["nasty.csv"] == ("loaded", len(events), 0, 0)
    assert statuses["nasty.parquet"] == ("loaded", 0, len(events), 0)
    stored = set(env.sql("SELECT tenant_id, metric, customer_ref, idempotency_key, resource_id FROM events "
                         "WHERE customer_ref <> 'cus_good'"))
    assert stored == {(e["tenantId"], e["metric"], e["customerRef"], e.get("idempotencyKey") or stored_key(env, e),
                       e["resourceId"]) for e in events}
    assert_ledger_consistent(env)


def test_a_csv_cell_with_a_quoted_line_break_loads(env):
    """RFC 4180 allows line breaks inside quoted cells (a pretty-printed meta,
    a customer name pasted with a newline); the file must not be rejected."""
    env.drop_text("multiline.csv", 'tenantId,metric,customerRef,quantity,ts,idempotencyKey,meta\n'
                                   'acme,api_calls,cus_A,1,2025-03-10T10:00:00Z,k1,"{\n  ""note"": ""two lines""\n}"\n'
                                   'acme,api_calls,"cus\r\nB",2,2025-03-10T10:00:00Z,k2,\n'
                                   'acme,api_calls,cus_C,3,2025-03-10T10:00:00Z,k3,\n')
    result = env.ingest()
    assert _statuses(result) == {"multiline.csv": "loaded"}
    assert env.sql("SELECT idempotency_key, customer_ref, meta::VARCHAR FROM events ORDER BY 1") == [
        ("k1", "cus_A", '{\n  "note": "two lines"\n}'), ("k2", "cus\r\nB", None), ("k3", "cus_C", None)]
    assert env.sql("SELECT row_number FROM events ORDER BY idempotency_key") == [(2,), (3,), (4,)]


PARQUET_COLUMNS = ("tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId")


def _write_parquet(path: Path, events: list[dict]) -> Path:
    """Like `Env.drop_parquet`, for any file name (its COPY target is quoted)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t (" + ", ".join(f"{c} VARCHAR" for c in PARQUET_COLUMNS) + ")")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)", [[e.get(c) for c in PARQUET_COLUMNS] for e in events])
    con.execute(f"COPY t TO {literal(str(path))} (FORMAT parquet)")
    con.close()
    return path


def stored_key(env, ev: dict) -> str:
    from stripemeter_assets.ledger.keys import derive_key

    return derive_key(ev["tenantId"], ev["metric"], ev["customerRef"], ev.get("resourceId"), utc(ev["ts"]),
                      Decimal(ev["quantity"]))


# -- file names --------------------------------------------------------------------

SAFE_NAMES = [
    "it's.jsonl", 'dq".jsonl', "sp ace .jsonl", "a...jsonl", "a..b.jsonl", "x..%2F..%2Fetc%2Fpasswd.jsonl",
    "ünï€😀.jsonl", "back\\slash.jsonl", "new\nline.jsonl", "$now.jsonl", "'; DROP TABLE events; --.jsonl",
    "%s%s%n.csv", "tab\tname.csv", "\u202etxt.jsonl", "-rf.parquet", "x'y\".parquet",
]


def _drop_named(env, name: str, ev: dict) -> Path:
    if name.endswith(".csv"):
        cols = list(ev)
        return env.drop_text(name, ",".join(cols) + "\n" + ",".join(str(ev[c]) for c in cols) + "\n")
    if name.endswith(".parquet"):
        return _write_parquet(env.landing / name, [ev])
    return env.drop_jsonl(name, [ev])


def test_files_with_quotes_spaces_dots_unicode_and_sql_in_their_names_load_their_own_rows(env):
    for i, name in enumerate(SAFE_NAMES):
        _drop_named(env, name, event(customer=f"cus_{i}", idempotencyKey=f"name-{i}"))
    result = env.ingest()
    assert _statuses(result) == {name: "loaded" for name in SAFE_NAMES}
    rows = env.sql("SELECT source_file, idempotency_key FROM events ORDER BY idempotency_key")
    assert sorted(rows) == sorted((str(env.landing / name), f"name-{i}") for i, name in enumerate(SAFE_NAMES))
    assert env.sql("SELECT count(*) FROM landing_files WHERE rows_loaded = 1") == [(len(SAFE_NAMES),)]
    assert all(Path(p).parent == env.landing for (p,) in env.sql("SELECT source_file FROM events"))
    assert_ledger_consistent(env)


def test_a_name_like_a_path_traversal_is_a_dot_file_never_read(env):
    """Names starting with a dot are unpublished files: ignored, and nothing
    outside the landing folder is ever read."""
    for name in ("..%2F..%2Fetc%2Fpasswd.jsonl", "...jsonl", "..\\..\\x.csv"):
        env.drop_jsonl(name, [event(idempotencyKey=name)])
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    assert _statuses(result) == {"good.jsonl": "loaded"}
    assert env.sql("SELECT DISTINCT source_file FROM events") == [(str(env.landing / "good.jsonl"),)]


@pytest.mark.parametrize("name", ["{{rows}}.jsonl", "a{{b.jsonl", "{{path}}.csv", "x{{file_seq}}.parquet"])
def test_a_file_name_with_template_braces_does_not_crash_the_batch(env, name):
    _drop_named(env, name, event(customer="cus_braces", idempotencyKey="braces"))
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    _assert_good_file_loaded(env, result)
    assert _statuses(result)[name] == "loaded"
    assert env.sql("SELECT source_file FROM events WHERE idempotency_key = 'braces'") == [(str(env.landing / name),)]


def test_a_csv_header_with_template_braces_does_not_crash_the_batch(env):
    env.drop_text("hdr.csv", "tenantId,metric,customerRef,quantity,ts,{{rows}}\n"
                             "acme,api_calls,cus_hdr,1,2025-03-10T10:00:00Z,x\n")
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    _assert_good_file_loaded(env, result)
    assert _statuses(result)["hdr.csv"] == "loaded"
    assert env.sql("SELECT quantity FROM events WHERE customer_ref = 'cus_hdr'") == [(Decimal(1),)]
    assert_ledger_consistent(env)


@pytest.mark.parametrize("name, neighbour", [
    ("a[1].jsonl", "a1.jsonl"),     # a bracket expression matching another file
    ("a?.jsonl", "ab.jsonl"),       # ? matching another file
    ("*.jsonl", ".inflight.jsonl"), # * matching a dot-file still being written
])
def test_a_file_name_with_glob_characters_reads_that_file_and_nothing_else(env, name, neighbour):
    env.drop_jsonl(name, [event(customer="cus_glob", idempotencyKey="mine")])
    env.drop_jsonl(neighbour, [event(customer="cus_other", idempotencyKey="neighbour")])
    result = env.ingest()
    by_name = {Path(f.path).name: f for f in result.files}
    assert by_name[name].rows_total == 1
    assert env.sql("SELECT customer_ref, source_file FROM events WHERE idempotency_key = 'mine'") == [
        ("cus_glob", str(env.landing / name))]
    if neighbour.startswith("."):  # never published: the landing scan ignores it, so must the reader
        assert env.sql("SELECT count(*) FROM events WHERE idempotency_key = 'neighbour'") == [(0,)]
    assert_ledger_consistent(env)


# -- the property ------------------------------------------------------------------

texts = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=24)
nasty = st.sampled_from(NASTY)
strings = st.one_of(texts, nasty)
METRICS = ["api_calls", "credits", "storage_gb", "seats", "requests"]
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
timestamps = st.builds(lambda d, tz: (d.replace(tzinfo=UTC).astimezone(tz)).isoformat(),
                       st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2025, 3, 20, 12, 30)), offsets)
positive = st.decimals(min_value=0, max_value=10 ** 12, places=9, allow_nan=False, allow_infinity=False)


@st.composite
def valid_events(draw) -> Line:
    ev = {"tenantId": draw(st.one_of(st.sampled_from(["acme", "globex"]), strings)),
          "metric": draw(st.one_of(st.sampled_from(METRICS), strings)),
          "customerRef": draw(strings), "ts": draw(timestamps)}
    if draw(st.booleans()):
        ev["idempotencyKey"] = draw(strings)
    if draw(st.booleans()):
        ev["resourceId"] = draw(strings)
    if draw(st.booleans()):
        ev["meta"] = draw(st.dictionaries(strings, st.one_of(strings, st.integers(-10, 10), st.none()), max_size=3))
    quantity = draw(positive)
    if ev["metric"] == "credits" and draw(st.booleans()):
        quantity = -quantity
    style = draw(st.sampled_from(["string", "number", "plain-number"]))
    ascii_only = draw(st.booleans())
    if len(quantity.normalize().as_tuple().digits) > 15:
        # Bare numbers past a double's precision have their own test above
        # (test_bare_number_quantities_are_stored_exactly_or_quarantined_never_rounded).
        style = "string"
    if style == "string":
        return _event_line({**ev, "quantity": str(quantity)}, ascii_only=ascii_only)
    token = str(quantity) if style == "number" else format(quantity, "f")
    return _event_line(ev, token, ascii_only=ascii_only)


invalid_lines = st.one_of(
    st.text(max_size=60).filter(lambda t: "\n" not in t and "\r" not in t),
    st.builds(lambda ev, field: json.dumps({k: v for k, v in ev.items() if k != field}),
              st.just(event()), st.sampled_from(["tenantId", "metric", "customerRef", "quantity", "ts"])),
    st.builds(lambda q: json.dumps(event(quantity=q)), st.sampled_from(["-1", "NaN", "1e999", "ten", "", "1.0000000001"])),
    st.builds(lambda ts: json.dumps(event(ts=ts)), st.sampled_from(["2999-01-01T00:00:00Z", "yesterday", "", "2025-13-01"])),
    st.builds(lambda v: json.dumps(event(tenant=v)), st.sampled_from([1, None, ["a"], {"a": 1}, "t" * 129])),
    st.just("[]"), st.just("null"), st.just('{"tenantId": '), st.just("{}"),
)


@st.composite
def jsonl_files(draw) -> list[Line]:
    lines = draw(st.lists(st.one_of(valid_events(), invalid_lines.map(Line)), min_size=1, max_size=12))
    for _ in range(draw(st.integers(0, 3))):  # exact re-sends and blank lines
        pick = draw(st.sampled_from(lines + [Line("")]))
        lines.insert(draw(st.integers(0, len(lines))), Line(pick.text, pick.event))
    return [line for line in lines if "\r" not in line.text and "\n" not in line.text]


@hsettings(max_examples=15, deadline=None, database=None, derandomize=True,
           suppress_health_check=list(HealthCheck))
@given(files=st.lists(jsonl_files(), min_size=1, max_size=3))
def test_any_generated_file_is_fully_accounted_for(tmp_path_factory, files):
    with pytest.MonkeyPatch.context() as mp:
        env = Env(tmp_path_factory.mktemp("prop"), mp)
        paths = [_lines(env, f"gen{i}.jsonl", lines) for i, lines in enumerate(files)]
        env.drop_jsonl("good.jsonl", GOOD)
        before = env.sql("SELECT count(*) FROM events")
        result = env.ingest("b1")
        _assert_good_file_loaded(env, result)
        for path, lines in zip(paths, files):
            check_file(env, path, lines, "b1")
        assert_ledger_consistent(env)
        assert env.sql("SELECT count(*) FROM events")[0][0] == before[0][0] + result.total("rows_loaded")
