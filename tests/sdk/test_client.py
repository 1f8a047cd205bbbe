"""The Python SDK: what it writes lands in the ledger exactly once, whatever
fails, races or retries on the way."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import fsspec
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from stripemeter_assets import settings, warehouse
from stripemeter_assets.ledger import keys
from stripemeter_assets.ledger import ingest_batch, list_ready_files
from stripemeter_assets.sdk import InvalidEvent, StripeMeterClient
from stripemeter_assets.sdk.events import parse_quantity
from stripemeter_assets.analytics.snapshot import publish_snapshot_from

TENANT = "acme"


@pytest.fixture
def landing(tmp_path):
    return str(tmp_path / "landing")


@pytest.fixture
def wh(tmp_path):
    return str(tmp_path / "warehouse.duckdb")


def ingest(landing: str, wh: str, config=None):
    with warehouse.connect(wh) as conn:
        return ingest_batch(conn, list_ready_files(landing, settle=0), batch_id=uuid.uuid4().hex,
                            config=config or settings.parse_config({}), now=settings.now())


def ledger(wh: str, sql: str = "SELECT * FROM events ORDER BY seq", params=None) -> list[dict]:
    with warehouse.connect(wh) as conn:
        cur = conn.execute(sql, params)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def quarantined(wh: str) -> list[dict]:
    return ledger(wh, "SELECT * FROM quarantine")


def landing_names(landing: str) -> list[str]:
    return sorted(os.listdir(landing)) if os.path.exists(landing) else []


def client(landing: str, **kwargs) -> StripeMeterClient:
    return StripeMeterClient(landing, tenant_id=TENANT, customer_id="cus_1", **kwargs)


# -- the contract ---------------------------------------------------------------

def test_flushed_file_is_contract_jsonl(landing):
    ts = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    c = client(landing)
    key = c.track("api_calls", quantity=Decimal("12.50"), ts=ts, meta={"route": "/v1"}, resource_id="seat-1")
    path = c.flush()
    assert os.path.basename(path) in landing_names(landing) and path.endswith(".jsonl")
    [line] = open(path, encoding="utf-8").read().splitlines()
    assert json.loads(line) == {
        "tenantId": TENANT, "metric": "api_calls", "customerRef": "cus_1", "quantity": "12.5",
        "ts": "2025-01-02T03:04:05.000006Z", "idempotencyKey": key, "resourceId": "seat-1",
        "meta": {"route": "/v1"},
    }


def test_tracked_events_ingest_with_their_keys(landing, wh):
    c = client(landing)
    ts = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    sent = [c.track("api_calls", quantity=q, ts=ts) for q in (1, Decimal("2.5"), "3")]
    c.flush()
    result = ingest(landing, wh)
    assert result.total("rows_loaded") == 3 and not quarantined(wh)
    rows = ledger(wh)
    assert [r["idempotency_key"] for r in rows] == sent
    assert [r["quantity"] for r in rows] == [Decimal(1), Decimal("2.5"), Decimal(3)]
    assert {r["ts"] for r in rows} == {ts.replace(tzinfo=None)}


def test_identical_track_calls_are_two_events(landing, wh):
    # The SDK always sends a key, so equal billable payloads are not merged.
    c = client(landing)
    ts = datetime(2025, 1, 2, tzinfo=UTC)
    c.track("api_calls", quantity=1, ts=ts)
    c.track("api_calls", quantity=1, ts=ts)
    c.flush()
    ingest(landing, wh)
    assert len(ledger(wh)) == 2


def test_given_idempotency_key_is_kept(landing, wh):
    c = client(landing)
    assert c.track("api_calls", idempotency_key="order-7") == "order-7"
    c.track("api_calls", idempotency_key="order-7")
    c.flush()
    ingest(landing, wh)
    assert [r["idempotency_key"] for r in ledger(wh)] == ["order-7"]


def test_unicode_fields_round_trip(landing, wh):
    customer = "cüstomer 😀 \u2028 \x00 \x1f \"q\" \\"
    c = client(landing)
    ts = datetime(2025, 1, 2, tzinfo=UTC)
    c.track("ピ", customer_ref=customer, resource_id="r\x1e", ts=ts, idempotency_key=None)
    c.flush()
    ingest(landing, wh)
    [row] = ledger(wh)
    assert (row["metric"], row["customer_ref"], row["resource_id"]) == ("ピ", customer, "r\x1e")


def test_naive_ts_is_utc(landing, wh):
    c = client(landing)
    c.track("api_calls", ts=datetime(2025, 1, 2, 3, 4, 5))
    c.track("api_calls", ts=datetime(2025, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))))
    c.flush()
    ingest(landing, wh)
    assert [r["ts"] for r in ledger(wh)] == [datetime(2025, 1, 2, 3, 4, 5)] * 2


def test_default_ts_is_now(landing, wh, monkeypatch):
    monkeypatch.setenv("STRIPEMETER_NOW", "2025-03-15T12:00:00.123456Z")
    c = client(landing)
    c.track("api_calls")
    c.flush()
    ingest(landing, wh)
    assert [r["ts"] for r in ledger(wh)] == [datetime(2025, 3, 15, 12, 0, 0, 123456)]


# -- quantities -----------------------------------------------------------------

def test_float_quantity_is_taken_as_its_repr(landing, wh):
    c = client(landing)
    for _ in range(3):
        c.track("api_calls", quantity=0.1)
    path = c.flush()
    assert {json.loads(line)["quantity"] for line in open(path)} == {"0.1"}
    ingest(landing, wh)
    assert ledger(wh, "SELECT sum(quantity) AS s FROM events")[0]["s"] == Decimal("0.3")


def test_negative_quantity_for_negative_metric(landing, wh):
    c = client(landing, negative_metrics={"credits"})
    c.track("credits", quantity=-5)
    with pytest.raises(InvalidEvent, match="negative"):
        c.track("api_calls", quantity=-5)
    c.flush()
    ingest(landing, wh, settings.parse_config({"metrics": {"credits": {"allow_negative": True}}}))
    assert [(r["metric"], r["quantity"]) for r in ledger(wh)] == [("credits", Decimal(-5))]


@pytest.fixture(scope="module")
def sql_macros():
    conn = duckdb.connect()
    warehouse.run_script(conn, "ledger/macros.sql")
    yield conn
    conn.close()


quantity_texts = st.one_of(
    st.text("0123456789.eE+- ", max_size=45),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.builds(lambda i, f: f"{i}.{f}", st.text("0123456789", min_size=1, max_size=31),
              st.text("0123456789", max_size=11)),
)


@hsettings(max_examples=300, deadline=None)
@given(text=quantity_texts)
def test_quantity_text_accepted_like_ingest(sql_macros, text):
    ingest_value = sql_macros.execute("SELECT sm_decimal(?)", [text]).fetchone()[0]
    try:
        sdk_value = parse_quantity(text)
    except InvalidEvent:
        sdk_value = None
    assert sdk_value == ingest_value
    if sdk_value is not None:
        canonical = keys.canonical_quantity(sdk_value)
        assert sql_macros.execute("SELECT sm_decimal(?)", [canonical]).fetchone()[0] == sdk_value


# -- invalid input --------------------------------------------------------------

FUTURE = object()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"metric": ""}, "metric"),
        ({"metric": None}, "metric"),
        ({"metric": "m" * 129}, "metric"),
        ({"metric": 7}, "metric"),
        ({"customer_ref": "c" * 256}, "customerRef"),
        ({"quantity": "abc"}, "quantity"),
        ({"quantity": "1,5"}, "quantity"),
        ({"quantity": float("nan")}, "quantity"),
        ({"quantity": float("inf")}, "quantity"),
        ({"quantity": Decimal("Infinity")}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": 10**29}, "quantity"),
        ({"quantity": Decimal("0.0000000001")}, "quantity"),
        ({"quantity": "1e999999999"}, "quantity"),
        ({"quantity": -1}, "quantity"),
        ({"ts": FUTURE}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": 1700000000}, "ts"),
        ({"meta": ["a"]}, "meta"),
        ({"meta": {"x": float("nan")}}, "meta"),
        ({"meta": {"x": object()}}, "meta"),
        ({"idempotency_key": ""}, "idempotencyKey"),
        ({"idempotency_key": "k" * 256}, "idempotencyKey"),
        ({"resource_id": "r" * 256}, "resourceId"),
        ({"resource_id": "\ud800"}, "resourceId"),
    ],
)
def test_invalid_event_raises_before_anything_is_written(landing, kwargs, field):
    c = client(landing, max_batch=1)  # anything buffered would be written at once
    kwargs = {"metric": "api_calls", **kwargs}
    if kwargs.get("ts") is FUTURE:
        kwargs["ts"] = settings.now() + timedelta(hours=1, seconds=5)
    with pytest.raises(InvalidEvent) as err:
        c.track(**kwargs)
    assert err.value.field == field and isinstance(err.value, ValueError)
    assert c.pending == 0 and c.flush() is None
    assert landing_names(landing) == []


def test_missing_customer_raises_without_default(landing):
    c = StripeMeterClient(landing, tenant_id=TENANT, max_batch=1)
    with pytest.raises(InvalidEvent) as err:
        c.track("api_calls")
    assert err.value.field == "customerRef" and landing_names(landing) == []


def test_invalid_tenant_refused_at_construction(landing):
    with pytest.raises(InvalidEvent) as err:
        StripeMeterClient(landing, tenant_id="t" * 129)
    assert err.value.field == "tenantId"


def test_invalid_event_in_batch_buffers_none(landing):
    c = client(landing, max_batch=1)
    with pytest.raises(InvalidEvent) as err:
        c.track_batch([{"metric": "a"}, {"metric": "b", "quantity": "x"}, {"metric": "c"}])
    assert (err.value.index, err.value.field) == (1, "quantity")
    assert c.pending == 0 and landing_names(landing) == []


def test_track_batch_accepts_contract_names(landing, wh):
    c = client(landing)
    keys_ = c.track_batch([{"metric": "a", "customerRef": "cus_2", "idempotencyKey": "k1"},
                           {"metric": "b", "customer_ref": "cus_3", "quantity": "2"}])
    c.flush()
    ingest(landing, wh)
    assert [(r["metric"], r["customer_ref"], r["idempotency_key"]) for r in ledger(wh)] == [
        ("a", "cus_2", "k1"), ("b", "cus_3", keys_[1])]


def test_meta_is_copied_at_track_time(landing):
    c = client(landing)
    meta = {"a": 1}
    c.track("api_calls", meta=meta)
    meta["a"] = 2
    assert json.loads(open(c.flush()).read())["meta"] == {"a": 1}


# -- buffering --------------------------------------------------------------------

def test_full_buffer_is_flushed_on_track(landing):
    c = client(landing, max_batch=3)
    c.track("api_calls")
    c.track("api_calls")
    assert landing_names(landing) == []
    c.track("api_calls")
    [name] = landing_names(landing)
    assert len(open(os.path.join(landing, name)).readlines()) == 3 and c.pending == 0


def test_old_buffer_is_flushed_on_track(landing):
    c = client(landing, max_age_seconds=0.2)
    c.track("api_calls")
    assert landing_names(landing) == []
    time.sleep(0.3)
    c.track("api_calls")
    [name] = landing_names(landing)
    assert len(open(os.path.join(landing, name)).readlines()) == 2


def test_flush_if_due_writes_only_an_old_buffer(landing):
    c = client(landing, max_age_seconds=0.2)
    c.track("api_calls")
    assert c.flush_if_due() is None and landing_names(landing) == []
    time.sleep(0.3)
    assert c.flush_if_due() is not None and c.pending == 0


def test_empty_flush_writes_nothing(landing):
    assert client(landing).flush() is None and landing_names(landing) == []


def test_context_manager_flushes_on_exit(landing, wh):
    with client(landing) as c:
        c.track("api_calls")
        assert landing_names(landing) == []
    ingest(landing, wh)
    assert len(ledger(wh)) == 1


def test_landing_defaults_to_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("STRIPEMETER_LANDING", str(tmp_path / "env-landing"))
    c = StripeMeterClient(tenant_id=TENANT, customer_id="cus_1")
    c.track("api_calls")
    assert os.path.dirname(c.flush()) == str(tmp_path / "env-landing")


# -- failures and retries -----------------------------------------------------------

def test_failed_flush_keeps_events_for_retry(landing, wh):
    c = client(landing)
    sent = [c.track("api_calls", quantity=i) for i in (1, 2, 3)]
    with open(landing, "w"):  # a file where the landing folder should be
        pass
    with pytest.raises(OSError):
        c.flush()
    assert c.pending == 3
    os.remove(landing)
    assert c.flush() is not None
    ingest(landing, wh)
    assert [r["idempotency_key"] for r in ledger(wh)] == sent


def test_failed_auto_flush_does_not_raise_from_track(landing, wh):
    c = client(landing, max_batch=1)
    with open(landing, "w"):
        pass
    key = c.track("api_calls")  # accepted: raising would invite a second track()
    assert c.pending == 1 and isinstance(c.last_error, OSError)
    os.remove(landing)
    c.flush()
    ingest(landing, wh)
    assert [r["idempotency_key"] for r in ledger(wh)] == [key]


def test_failing_landing_refuses_events_beyond_the_buffer_cap(landing):
    c = client(landing, max_batch=1)  # cap: 100 batches of 1
    with open(landing, "w"):
        pass
    for _ in range(100):
        c.track("api_calls")
    with pytest.raises(OSError):
        c.track("api_calls")  # raised: this event was not taken, the caller may retry it
    assert c.pending == 100


def test_retry_after_unreported_success_counts_once(landing, wh, monkeypatch):
    """The file landed but the caller saw an error (e.g. a lost reply): the
    retry writes the same events again, with the same keys."""
    real_rename, calls = os.rename, []

    def rename_then_fail(src, dst):
        real_rename(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            raise OSError("connection reset after rename")

    monkeypatch.setattr(os, "rename", rename_then_fail)
    c = client(landing)
    c.track("api_calls", quantity=1)
    c.track("api_calls", quantity=2)
    with pytest.raises(OSError):
        c.flush()
    c.track("api_calls", quantity=4)  # the retried file differs from the first
    c.flush()
    assert len(landing_names(landing)) == 2
    result = ingest(landing, wh)
    assert [(f.rows_loaded, f.rows_duplicate) for f in result.files] == [(2, 0), (1, 2)]
    assert ledger(wh, "SELECT sum(quantity) AS s FROM events")[0]["s"] == 7


@pytest.fixture
def memory_landing():
    url = f"memory://sdk-{uuid.uuid4().hex}/landing"
    yield url
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory://").split("/")[0]
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_failed_remote_write_is_retried(memory_landing, wh, monkeypatch):
    fs = fsspec.filesystem("memory")
    real_mv, calls = fs.mv, []

    def mv_fails_once(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OSError("503 Slow Down")
        return real_mv(*args, **kwargs)

    monkeypatch.setattr(fs, "mv", mv_fails_once)
    c = client(memory_landing)
    sent = [c.track("api_calls", quantity=i) for i in (1, 2)]
    with pytest.raises(OSError):
        c.flush()
    assert fs.find(memory_landing) == []  # the temporary object was removed
    path = c.flush()
    assert path.startswith("memory://") and len(calls) == 2
    ingest(memory_landing, wh)
    assert [r["idempotency_key"] for r in ledger(wh)] == sent


def test_remote_temp_object_is_a_dot_file(memory_landing, monkeypatch):
    fs = fsspec.filesystem("memory")
    real_mv, seen = fs.mv, []

    def mv_spy(src, dst, *args, **kwargs):
        seen.append((src, dst, list_ready_files(memory_landing, settle=0)))
        return real_mv(src, dst, *args, **kwargs)

    monkeypatch.setattr(fs, "mv", mv_spy)
    c = client(memory_landing)
    c.track("api_calls")
    c.flush()
    [(src, dst, ready)] = seen
    assert os.path.basename(src).startswith(".") and ready == []
    assert len(list_ready_files(memory_landing, settle=0)) == 1


def test_landing_scan_never_sees_a_file_being_written(landing, monkeypatch):
    real_fsync, seen = os.fsync, []

    def fsync_and_scan(fd):
        real_fsync(fd)
        if not seen:  # the file's own fsync, before it is published
            seen.append((landing_names(landing), list_ready_files(landing, settle=0)))

    monkeypatch.setattr(os, "fsync", fsync_and_scan)
    c = client(landing)
    c.track("api_calls")
    path = c.flush()
    [(names, ready)] = seen
    assert len(names) == 1 and names[0].startswith(".") and names[0].endswith(".tmp")
    assert ready == []
    assert [f.path for f in list_ready_files(landing, settle=0)] == [path]


# -- concurrency --------------------------------------------------------------------

def test_one_client_shared_by_threads_lands_every_event_once(landing, wh):
    c = client(landing, max_batch=50)
    per_thread, threads = 150, 8
    results: list[list[str]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def work(i):
        start.wait()
        for n in range(per_thread):
            results[i].append(c.track("api_calls", quantity=n))

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    c.flush()
    result = ingest(landing, wh)
    assert result.total("rows_duplicate") == 0 and not quarantined(wh)
    assert sorted(r["idempotency_key"] for r in ledger(wh)) == sorted(k for ks in results for k in ks)


def test_clients_in_threads_never_clash_even_with_a_coarse_clock(landing, wh, monkeypatch):
    # Every writer sees the same instant (a coarse clock, or many hosts):
    # the file names must still differ, or one rename would replace another.
    import stripemeter_assets.sdk.writer as writer

    class CoarseClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2025, 1, 1, tzinfo=tz)

    monkeypatch.setattr(writer, "datetime", CoarseClock)
    threads, per_thread = 8, 8
    start = threading.Barrier(threads)

    def work():
        c = client(landing, max_batch=1)
        start.wait()
        for _ in range(per_thread):
            c.track("api_calls")

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert len(landing_names(landing)) == threads * per_thread
    ingest(landing, wh)
    assert len(ledger(wh)) == threads * per_thread


def _produce(landing: str, worker: int, count: int, start, results) -> None:
    c = StripeMeterClient(landing, tenant_id=TENANT, customer_id=f"cus_{worker}", max_batch=20)
    start.wait()
    sent = [c.track("api_calls", quantity=n) for n in range(count)]
    c.flush()
    results.put(sent)


def test_processes_write_complete_files_and_every_event_lands_once(landing, wh):
    workers, count = 4, 120
    ctx = multiprocessing.get_context("spawn")
    # Plain processes with bounded joins: a Pool's teardown can wait forever
    # on a spawned worker, and a test must fail rather than hang the suite.
    start, results = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_produce, args=(landing, w, count, start, results)) for w in range(workers)]
    for p in procs:
        p.start()
    sent = [results.get(timeout=120) for _ in procs]
    for p in procs:  # every producer has reported; reap them, however they exit
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    names = landing_names(landing)
    assert not [n for n in names if n.startswith(".")]  # no temporary file left behind
    lines = [json.loads(line) for n in names for line in open(os.path.join(landing, n))]
    assert len(lines) == workers * count  # every file whole: each line parses
    result = ingest(landing, wh)
    assert result.count("loaded") == len(names) and result.total("rows_duplicate") == 0
    assert sorted(r["idempotency_key"] for r in ledger(wh)) == sorted(k for ks in sent for k in ks)


# -- reading back ------------------------------------------------------------------

def test_get_usage_matches_period_usage_after_snapshot(landing, wh, tmp_path, monkeypatch):
    monkeypatch.setenv("STRIPEMETER_NOW", "2025-03-15T12:00:00Z")
    analytics = str(tmp_path / "analytics.duckdb")
    c = StripeMeterClient(landing, tenant_id=TENANT, customer_id="cus_1", analytics=analytics)
    c.track("api_calls", quantity=5)
    c.track("api_calls", quantity=7)
    c.track("storage_gb", quantity=3)
    c.track("api_calls", customer_ref="cus_2", quantity=100)
    c.track("api_calls", quantity=11, ts=datetime(2025, 2, 10, tzinfo=UTC))
    c.flush()
    ingest(landing, wh)
    with warehouse.connect(wh) as conn:
        # Monthly sums straight from the ledger, as the counters would hold them.
        conn.execute("""INSERT INTO period_usage
            SELECT tenant_id, metric, customer_ref, date_trunc('month', ts), date_trunc('month', ts) + INTERVAL 1 MONTH,
                   'sum', sum(quantity), count(*), max(ts), TIMESTAMP '2025-03-15 12:00:00'
            FROM events GROUP BY ALL""")
        conn.execute("INSERT INTO period_usage VALUES ('other', 'api_calls', 'cus_1', '2025-03-01', '2025-04-01', "
                     "'sum', 9, 1, '2025-03-02', '2025-03-15')")
        publish_snapshot_from(conn, analytics)
    expected = ledger(wh, "SELECT * FROM period_usage WHERE tenant_id = ? AND customer_ref = ? "
                          "AND period_start = '2025-03-01' ORDER BY metric", [TENANT, "cus_1"])
    usage = c.get_usage("cus_1")
    assert [(u["metric"], u["value"], u["event_count"]) for u in usage] == [
        ("api_calls", Decimal(12), 2), ("storage_gb", Decimal(3), 1)]
    assert usage == [{k: (v.replace(tzinfo=UTC) if isinstance(v, datetime) else v) for k, v in row.items()}
                     for row in expected]
    assert [u["value"] for u in c.get_usage()] == [Decimal(12), Decimal(3)]  # customer_id by default


def test_get_usage_without_snapshot_says_so(landing, tmp_path):
    c = StripeMeterClient(landing, tenant_id=TENANT, analytics=str(tmp_path / "none.duckdb"))
    with pytest.raises(FileNotFoundError, match="snapshot"):
        c.get_usage("cus_1")


def test_get_projection_empty_without_table(landing, wh, tmp_path):
    analytics = str(tmp_path / "analytics.duckdb")
    with warehouse.connect(wh) as conn:
        conn.execute("DROP TABLE IF EXISTS cost_projection")
        publish_snapshot_from(conn, analytics)
    assert client(landing, analytics=analytics).get_projection("cus_1") == []


def test_get_projection_returns_this_customers_rows(landing, wh, tmp_path):
    analytics = str(tmp_path / "analytics.duckdb")
    with warehouse.connect(wh) as conn:
        conn.execute("DROP TABLE IF EXISTS cost_projection")
        conn.execute("CREATE TABLE cost_projection (tenant_id VARCHAR, customer_ref VARCHAR, metric VARCHAR, "
                     "projected_cost DECIMAL(38, 9))")
        conn.execute("INSERT INTO cost_projection VALUES ('acme', 'cus_1', 'api_calls', 1.5), "
                     "('acme', 'cus_2', 'api_calls', 2), ('other', 'cus_1', 'api_calls', 3)")
        publish_snapshot_from(conn, analytics)
    rows = client(landing, analytics=analytics).get_projection("cus_1")
    assert rows == [{"tenant_id": "acme", "customer_ref": "cus_1", "metric": "api_calls",
                     "projected_cost": Decimal("1.5")}]


# -- S3 ---------------------------------------------------------------------------------

@pytest.fixture
def s3_landing(monkeypatch):
    """A bucket on a local S3-compatible server (moto), reached through the
    standard AWS environment, as the ingest reaches it."""
    import socket

    import s3fs
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3fs.S3FileSystem.clear_instance_cache()
    fsspec.filesystem("s3").mkdir("landing-bucket")
    yield "s3://landing-bucket/events"
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def test_s3_landing_file_ingests_once(s3_landing, wh):
    c = client(s3_landing)
    sent = [c.track("api_calls", quantity=i) for i in (1, 2)]
    path = c.flush()
    assert path.startswith(s3_landing + "/")
    objects = fsspec.filesystem("s3").find(s3_landing.removeprefix("s3://"))
    assert [o.rsplit("/", 1)[-1] for o in objects] == [path.rsplit("/", 1)[-1]]  # no temporary object left
    ingest(s3_landing, wh)
    assert [r["idempotency_key"] for r in ledger(wh)] == sent
