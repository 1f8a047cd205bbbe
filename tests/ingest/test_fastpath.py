"""The typed fast path (ingest/fastpath.py) gives exactly the ledger the
exact path gives: clean files load through it with the same rows, and a file
with one bad row anywhere loads through the exact path with every row
number and reason the exact path gives."""

import json
import random

import duckdb
import pytest

from stripemeter_assets.ingest import batch, fastpath
from tests.conftest import event

LEDGER = ("SELECT tenant_id, metric, customer_ref, resource_id, quantity, ts, idempotency_key, key_hash, key_derived, "
          "meta, regexp_extract(source_file, '[^/]*$'), row_number, seq & 4294967295 FROM events "
          "ORDER BY source_file, row_number")
QUARANTINE = ("SELECT regexp_extract(source_file, '[^/]*$'), row_number, reason, detail, raw, tenant_id, idempotency_key "
              "FROM quarantine ORDER BY source_file, row_number")


def exact_only(monkeypatch):
    """Every file through the exact path, as before the fast path existed."""
    monkeypatch.setattr(batch, "stage_clean_file", lambda *args: False)


def both_ways(env, monkeypatch, batch_id="b"):
    """(readers, ledger, quarantine) of the landing loaded the fast way, then
    of the same landing loaded into a fresh warehouse the exact way."""
    fast = env.ingest(batch_id)
    fast_rows = env.sql(LEDGER), env.sql(QUARANTINE)
    for suffix in ("", ".wal"):
        (env.root / f"warehouse.duckdb{suffix}").unlink(missing_ok=True)
    with monkeypatch.context() as m:
        exact_only(m)
        exact = env.ingest(batch_id)
    assert [f.reader for f in exact.files] == ["exact"] * len(exact.files)
    assert [(f.path, f.status, f.rows_loaded, f.rows_quarantined) for f in fast.files] == \
           [(f.path, f.status, f.rows_loaded, f.rows_quarantined) for f in exact.files]
    return {f.path.rsplit("/", 1)[-1]: f.reader for f in fast.files}, fast_rows, (env.sql(LEDGER), env.sql(QUARANTINE))


CLEAN = [
    event(quantity="5", ts="2025-03-10T10:00:00Z", idempotencyKey="k1"),
    event(quantity="2.5", ts="2025-03-10T11:00:00.123456Z"),
    event(customer="cus_B", quantity="7", ts="2025-03-11T00:00:00+02:00", resourceId="seat-1"),
    event(customer="cus_C", quantity="0.000000001", ts="2025-03-10 10:30:00", idempotencyKey=""),
    event(metric="credits", quantity="-3.25", ts="2025-03-10T05:30:00-05:00", idempotencyKey=None),
    event(tenant="globex", quantity="1000", ts="2025-03-10T10:00:00.5Z", resourceId=None),
    event(quantity="99999999999999999999999999999.999999999", ts="2025-03-12T00:00:00Z", idempotencyKey="big"),
    event(quantity="1.500000000000", ts="2025-03-12T00:00:00Z"),
]
NUMBERS = [  # quantities as JSON numbers
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "n1", "quantity": 12345678901234567890.123456789, "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "n2", "quantity": 0.0015, "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "n3", "quantity": 42, "ts": "2025-03-10T10:00:00Z", "idempotencyKey": null}',
    '{"metric": "api_calls", "tenantId": "acme", "quantity": 0.1, "customerRef": "n4", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "cüs_ü ✓", "quantity": "3", "ts": "2025-03-10T10:00:00Z"}',
]


def test_clean_jsonl_loads_through_the_typed_reader_with_the_exact_paths_rows(env, monkeypatch):
    env.drop_jsonl("a.jsonl", CLEAN + NUMBERS)
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"a.jsonl": "typed"}
    assert fast == exact
    assert len(fast[0]) == len(CLEAN) + len(NUMBERS) and fast[1] == []


def test_a_large_jsonl_file_read_in_many_chunks_keeps_every_row_number(env, monkeypatch):
    monkeypatch.setattr(fastpath, "CHUNK_BYTES", 64 << 10)  # about 400 lines per chunk
    lines = [json.dumps(event(customer=f"line-{n}", quantity=str(n % 97), idempotencyKey=f"k{n}" if n % 2 else None,
                              ts=f"2025-03-10T10:00:{n % 60:02d}Z")) for n in range(1, 20_001)]
    (env.landing / "big.jsonl").write_text("\n".join(lines))  # no newline after the last line
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"big.jsonl": "typed"}
    assert fast == exact
    assert env.sql("SELECT count(*) FROM events WHERE customer_ref <> 'line-' || row_number") == [(0,)]
    assert env.sql("SELECT count(*) FROM events") == [(20_000,)]


def _typed_parquet(path, rows):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t (tenantId VARCHAR, metric VARCHAR, customerRef VARCHAR, quantity DECIMAL(18, 3), "
                "ts TIMESTAMPTZ, idempotencyKey VARCHAR, resourceId VARCHAR, seats BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000)")
    con.close()


def test_clean_parquet_with_typed_columns_loads_with_the_exact_paths_rows(env, monkeypatch):
    rows = [("acme", "credits" if n % 7 == 0 else "api_calls", f"cus_{n % 13}", f"{(n % 1000) / 8 - (n % 7 == 0) * 200}",
             f"2025-03-{1 + n % 19:02d}T{n % 24:02d}:00:00.{n % 999999:06d}+00:00", f"k{n}" if n % 3 else None,
             "r" if n % 5 == 0 else None, n) for n in range(5_000)]
    _typed_parquet(env.landing / "typed.parquet", rows)
    env.drop_parquet("text.parquet", CLEAN)  # every column VARCHAR
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"typed.parquet": "typed", "text.parquet": "typed"}
    assert fast == exact
    assert len(fast[0]) > 5_000


def test_clean_csv_and_gzip_load_with_the_same_rows_either_way(env, monkeypatch):
    cols = ["tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId"]
    env.drop_text("a.csv", "\n".join([",".join(cols)] + [",".join(str(e.get(c) or "") for c in cols) for e in CLEAN]) + "\n")
    env.drop_jsonl("b.jsonl.gz", CLEAN, gz=True)
    readers, fast, exact = both_ways(env, monkeypatch)
    assert fast == exact and len(fast[0]) == len(CLEAN)  # the gzip copy is a duplicate of the CSV
    assert readers == {"a.csv": "exact", "b.jsonl.gz": "exact"}


def test_one_bad_row_deep_inside_sends_the_whole_file_through_the_exact_path(env, monkeypatch):
    monkeypatch.setattr(fastpath, "CHUNK_BYTES", 256 << 10)
    lines = [json.dumps(event(customer=f"line-{n}", quantity=str(n % 97), idempotencyKey=f"k{n}")) for n in range(1, 40_001)]
    lines[37_122] = json.dumps(event(customer="line-37123", quantity="1.0000000001", idempotencyKey="k37123"))
    env.drop_jsonl("a.jsonl", lines)
    # the same bad row in a Parquet file, one past a row group
    rows = [("acme", "api_calls", f"p-{n}", str(n % 97), "2025-03-10T10:00:00Z", f"p{n}", None, n) for n in range(3_000)]
    rows[1_000] = ("acme", "api_calls", "p-1000", "-4", "2025-03-10T10:00:00Z", "p1000", None, 1000)
    _parquet_text(env.landing / "b.parquet", rows)
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"a.jsonl": "exact", "b.parquet": "exact"}
    assert fast == exact
    assert [(f, n, r) for f, n, r, *_ in fast[1]] == [("a.jsonl", 37_123, "invalid_quantity"),
                                                      ("b.parquet", 1_001, "negative_quantity")]
    assert len(fast[0]) == 40_000 + 3_000 - 2


def _parquet_text(path, rows):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (tenantId VARCHAR, metric VARCHAR, customerRef VARCHAR, quantity VARCHAR, "
                "ts VARCHAR, idempotencyKey VARCHAR, resourceId VARCHAR, seats BIGINT)")
    con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000)")
    con.close()


DOUBTFUL_LINES = [
    "",                                                   # a blank line
    "   ",                                                # a line of spaces
    '  {"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z"} '
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "y", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "ac\\u006de", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z", "meta": {"a": 1}}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z", "other": 1}',
    '{"tenantId": "acme", "tenantId": "globex", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": 123456789012345678901234567890, "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": 1.5E-3, "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "-712027827900266614332097527365.7712", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": " 1", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "", "ts": "2025-03-10T10:00:00Z"}',
    '{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1"}',
    '[1, 2]',
    '\ufeff{"tenantId": "acme", "metric": "api_calls", "customerRef": "x", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}',
]


@pytest.mark.parametrize("doubtful", range(len(DOUBTFUL_LINES)))
def test_a_doubtful_line_gives_what_the_exact_path_gives(env, monkeypatch, doubtful):
    clean = [json.dumps(event(customer=f"c{n}", idempotencyKey=f"k{n}")) for n in range(5)]
    at = 0 if DOUBTFUL_LINES[doubtful].startswith("\ufeff") else 3  # a byte-order mark opens the file
    env.drop_jsonl("a.jsonl", clean[:at] + [DOUBTFUL_LINES[doubtful]] + clean[at:])
    readers, fast, exact = both_ways(env, monkeypatch)
    assert fast == exact
    assert readers == {"a.jsonl": "exact"}


def test_random_quantities_and_timestamps_give_the_same_ledger_either_way(env, monkeypatch):
    # One file per event, so each file takes its own path: the typed reader
    # must never accept a value the exact path reads differently or rejects.
    rng = random.Random(17)
    digits = lambda k: "".join(rng.choice("0123456789") for _ in range(k))  # noqa: E731
    quantities = ["0", "-0", "+5", "5.", ".5", "007", "1e3", "1E-9", "1e-10", "2.5e+2", "-1.5E2", "1_0", "0x1F",
                  "1.0000000001", "1.0000000000", "99999999999999999999999999999", "100000000000000000000000000000",
                  "NaN", "Infinity", "1,5", "٣"]
    for _ in range(60):
        quantities.append(f"{rng.choice(['', '-'])}{digits(rng.randint(1, 31))}.{digits(rng.randint(0, 12))}")
    times = ["2025-03-10T10:00:00Z", "2025-03-10T10:00:00.1234567Z", "2025-03-10T10:00:00+24:00", "2025-03-10t10:00:00Z",
             "2025-03-10T10:00:00+0530", "2025-03-10T10:00:00.000001-00:30", "2025-03-10 10:00:00", "0999-12-31T23:59:59Z",
             "2025-13-01T00:00:00Z", "2025-03-10T10:00:60Z", "2025-03-10T10:00:00 Z"]
    n = 0
    for q in quantities:
        for form in ("string", "number"):
            n += 1
            value = json.dumps(q) if form == "string" else q
            line = ('{"tenantId": "acme", "metric": "credits", "customerRef": "c%d", "quantity": %s, "ts": %s}'
                    % (n, value, json.dumps(rng.choice(times))))
            env.drop_text(f"f{n:03d}.jsonl", line + "\n")
    readers, fast, exact = both_ways(env, monkeypatch)
    assert fast == exact
    assert "typed" in readers.values() and "exact" in readers.values()


def test_a_file_rejected_whole_is_rejected_the_same_either_way(env, monkeypatch):
    env.drop_text("a.jsonl", '{"tenantId": "acme", "metric": "x\x1e", "customerRef": "c", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}\n')
    (env.landing / "b.jsonl").write_bytes(b'{"tenantId": "\xff", "metric": "m", "customerRef": "c", "quantity": "1", "ts": "2025-03-10T10:00:00Z"}\n')
    readers, fast, exact = both_ways(env, monkeypatch)
    assert fast == exact
