"""The typed Parquet path (ingest/fastpath.py) gives exactly the ledger the
exact path gives: clean files load through it with the same rows, and a file
with one bad row anywhere, or a column type it does not read exactly, loads
through the exact path with every row number and reason the exact path
gives."""

import json

import duckdb
import pyarrow as pa
import pytest

from stripemeter_assets.ledger import batch
from tests.conftest import event

LEDGER = ("SELECT tenant_id, metric, customer_ref, resource_id, quantity, ts, idempotency_key, key_hash, key_derived, "
          "meta, regexp_extract(source_file, '[^/]*$'), row_number, seq & 4294967295 FROM events "
          "ORDER BY source_file, row_number")
# An unreadable file's error quotes the reader's statement, with the random
# name of its temporary link: only the error's head is compared.
QUARANTINE = ("SELECT regexp_extract(source_file, '[^/]*$'), row_number, reason, "
              "CASE WHEN reason = 'unparseable_file' THEN left(detail, 60) ELSE detail END, raw, tenant_id, "
              "idempotency_key FROM quarantine ORDER BY source_file, row_number")


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


CLEAN = [  # every column VARCHAR in drop_parquet
    event(quantity="5", ts="2025-03-10T10:00:00Z", idempotencyKey="k1"),
    event(quantity="2.5", ts="2025-03-10T11:00:00.123456Z"),
    event(customer="cus_B", quantity="7", ts="2025-03-11T00:00:00+02:00", resourceId="seat-1"),
    event(customer="cus_C", quantity="0.000000001", ts="2025-03-10 10:30:00", idempotencyKey=""),
    event(metric="credits", quantity="-3.25", ts="2025-03-10T05:30:00-05:00", idempotencyKey=None),
    event(tenant="globex", quantity="1000", ts="2025-03-10T10:00:00.5Z", resourceId=None),
    event(quantity="99999999999999999999999999999.999999999", ts="2025-03-12T00:00:00Z", idempotencyKey="big"),
    event(quantity="1.500000000000", ts="2025-03-12T00:00:00Z"),
]
def _insert(con, rows):
    # Through Arrow as text, cast by DuckDB: executemany costs ~1.5 ms a row.
    names = ["tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId", "seats"]
    con.register("_rows", pa.table({n: pa.array([None if r[i] is None else str(r[i]) for r in rows], pa.string())
                                   for i, n in enumerate(names)}))
    con.execute("INSERT INTO t SELECT * FROM _rows")
    con.unregister("_rows")


def _typed_parquet(path, rows):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TABLE t (tenantId VARCHAR, metric VARCHAR, customerRef VARCHAR, quantity DECIMAL(18, 3), "
                "ts TIMESTAMPTZ, idempotencyKey VARCHAR, resourceId VARCHAR, seats BIGINT)")
    _insert(con, rows)
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


def test_one_bad_row_deep_inside_sends_the_whole_file_through_the_exact_path(env, monkeypatch):
    rows = [("acme", "api_calls", f"p-{n}", str(n % 97), "2025-03-10T10:00:00Z", f"p{n}", None, n) for n in range(30_000)]
    rows[27_123] = ("acme", "api_calls", "p-27123", "1.0000000001", "2025-03-10T10:00:00Z", "p27123", None, 27_123)
    _parquet_text(env.landing / "a.parquet", rows)
    # typed columns: a negative quantity one past a row group
    typed = [("acme", "api_calls", f"t-{n}", f"{n % 97}.5", "2025-03-10T10:00:00+00:00", f"t{n}", None, n) for n in range(3_000)]
    typed[1_000] = ("acme", "api_calls", "t-1000", "-4", "2025-03-10T10:00:00+00:00", "t1000", None, 1000)
    _typed_parquet(env.landing / "b.parquet", typed)
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"a.parquet": "exact", "b.parquet": "exact"}
    assert fast == exact
    assert [(f, n, r) for f, n, r, *_ in fast[1]] == [("a.parquet", 27_124, "invalid_quantity"),
                                                      ("b.parquet", 1_001, "negative_quantity")]
    assert json.loads(fast[1][0][4])["quantity"] == "1.0000000001"  # the exact path's raw row
    assert len(fast[0]) == 30_000 + 3_000 - 2


@pytest.mark.parametrize("column, value", [
    ("quantity DECIMAL(38, 12)", "1.000000000001"),   # more fractional digits than the ledger keeps
    ("quantity DOUBLE", "0.1"),
    ("quantity HUGEINT", "5"),
    ("ts TIMESTAMP_NS", "2025-03-10 10:00:00.123456789"),
    ("ts TIMESTAMPTZ", "0999-12-31 23:00:00+00"),      # the exact path reads its text differently
    ("ts TIMESTAMP", "10000-01-01 00:00:00"),
    ("tenantId BIGINT", "42"),
    ("meta VARCHAR", '{"a": 1}'),
])
def test_a_column_type_the_typed_path_does_not_read_exactly_gives_what_the_exact_path_gives(
        env, monkeypatch, column, value):
    name, typ = column.split(" ", 1)
    base = {"tenantId": ("VARCHAR", "'acme'"), "metric": ("VARCHAR", "'api_calls'"), "customerRef": ("VARCHAR", "'c'"),
            "quantity": ("DECIMAL(18, 3)", "1"), "ts": ("TIMESTAMPTZ", "'2025-03-10 10:00:00+00'")}
    base[name] = (typ, f"'{value}'")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    select = ", ".join(f"{v}::{t} AS {k}" for k, (t, v) in base.items())
    con.execute(f"COPY (SELECT {select}, 'k' || range AS idempotencyKey FROM range(3)) "
                f"TO '{env.landing / 'a.parquet'}' (FORMAT parquet)")
    con.close()
    (env.landing / "b.parquet").write_bytes(b"PAR1 not really")
    readers, fast, exact = both_ways(env, monkeypatch)
    assert fast == exact
    assert readers == {"a.parquet": "exact", "b.parquet": "exact"}


def _parquet_text(path, rows):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (tenantId VARCHAR, metric VARCHAR, customerRef VARCHAR, quantity VARCHAR, "
                "ts VARCHAR, idempotencyKey VARCHAR, resourceId VARCHAR, seats BIGINT)")
    _insert(con, rows)
    con.execute(f"COPY t TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000)")
    con.close()



# JSONL lines the typed path reads (DuckDB's JSON reader): numbers of every
# shape up to 15 characters, escapes, meta objects, null and absent fields.
CLEAN_JSONL = [
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_A","quantity":0.1,"ts":"2025-03-10T10:00:00Z"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_A","quantity":3.10,"ts":"2025-03-10T10:00:01Z",'
    '"idempotencyKey":"k1","meta":{"a":[1,2.50,"x"],"b":{"c":null}}}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_B","quantity":1e-3,"ts":"2025-03-10T10:00:02+02:00"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_B","quantity":25E2,"ts":"2025-03-10 10:00:03"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_B","quantity":123456789012345,"ts":"2025-03-10T10:00:04Z"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_C","quantity":"1.500000000000","ts":"2025-03-10T10:00:05Z"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_C","quantity":"99999999999999999999999999999.999999999",'
    '"ts":"2025-03-10T10:00:06Z","idempotencyKey":null,"resourceId":null,"meta":null}',
    '{"tenantId":"caf\\u00e9 \\"x\\"","metric":"api_calls","customerRef":"cus_\\u4e2d","quantity":12345.6789012,'
    '"ts":"2025-03-10T10:00:07.123456Z","resourceId":"r1","idempotencyKey":""}',
    '  {"tenantId":"acme","metric":"credits","customerRef":"cus_D","quantity":-3.25,"ts":"2025-03-10T10:00:08Z",'
    '"extra":{"quantity":"ignored"}}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_A","quantity":0.1,"ts":"2025-03-10T10:00:00Z"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_A","quantity":3.1,"ts":"2025-03-10T10:00:01Z",'
    '"idempotencyKey":"k1"}',
    '{"tenantId":"acme","metric":"api_calls","customerRef":"cus_Z","quantity":4,"ts":"2025-03-10T10:00:01Z",'
    '"idempotencyKey":"k1"}',
]


def test_clean_jsonl_loads_through_the_typed_path_with_the_exact_paths_rows(env, monkeypatch):
    env.drop_jsonl("a.jsonl", CLEAN_JSONL)  # the last three: a duplicate, a duplicate key, a conflict
    env.drop_jsonl("b.jsonl", [event(quantity=str(n % 13), ts=f"2025-03-10T{n % 24:02d}:00:00Z", idempotencyKey=f"b{n}")
                               for n in range(20_000)])
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"a.jsonl": "typed", "b.jsonl": "typed"}
    assert fast == exact
    assert [(n, r) for _, n, r, *_ in fast[1]] == [(12, "idempotency_conflict")]
    assert len(fast[0]) == 9 + 20_000


def test_jsonl_with_one_bad_row_deep_inside_loads_through_the_exact_path(env, monkeypatch):
    lines = [json.dumps(event(customer=f"c-{n}", quantity=n % 97 / 10, idempotencyKey=f"j{n}")) for n in range(30_000)]
    lines[27_123] = lines[27_123].replace('"quantity": ', '"quantity": "x')  # not JSON any more
    lines[28_000] = json.dumps(event(quantity=-1))
    env.drop_jsonl("a.jsonl", lines)
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"a.jsonl": "exact"}
    assert fast == exact
    assert [(n, r) for _, n, r, *_ in fast[1]] == [(27_124, "invalid_json"), (28_001, "negative_quantity")]
    assert fast[1][0][4] == lines[27_123]  # the exact path's raw line
    assert len(fast[0]) == 30_000 - 2


@pytest.mark.parametrize("text", [
    # a number the reader would keep as a different decimal (its double's shortest text)
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":12345678901234567.5,"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":0.1000000000000000001,"ts":"2025-03-10T10:00:00Z"}\n',
    # a key spelled with an escape; the exact path finds no "quantity" token
    '{"tenantId":"a","metric":"m","customerRef":"c","quan\\u0074ity":1.5,"ts":"2025-03-10T10:00:00Z"}\n',
    # lines the JSON reader does not count as rows
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z"}\n\n'
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":2,"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z"}\r\n'
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":2,"ts":"2025-03-10T10:00:00Z","x":"\x1e"}\r\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z","quantity":2}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c",\n"quantity":1,"ts":"2025-03-10T10:00:00Z"}\n',
    # a value the reader would turn into text where the exact path says invalid_type
    '{"tenantId":5,"metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric" : true,"customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric":"m","customerRef":\t{"id":1},"quantity":1,"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":true,"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":[1],"ts":"2025-03-10T10:00:00Z"}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":1741600800}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z","idempotencyKey":7}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z","resourceId":false}\n',
    '{"tenantId":"a","metric":"m","customerRef":"c","quantity":1,"ts":"2025-03-10T10:00:00Z","meta":[1]}\n',
])
def test_a_jsonl_line_the_json_reader_could_read_differently_gives_what_the_exact_path_gives(env, monkeypatch, text):
    (env.landing / "a.jsonl").write_bytes(text.encode())
    readers, fast, exact = both_ways(env, monkeypatch)
    assert readers == {"a.jsonl": "exact"}
    assert fast == exact
