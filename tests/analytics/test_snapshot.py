"""The analyst snapshot: published beside open readers without waiting for
them, consistent, and carrying the documented views."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pytest

from stripemeter_assets import settings, warehouse
from stripemeter_assets.analytics import snapshot
from stripemeter_assets.ledger import ingest_batch, list_ready_files
from stripemeter_assets.analytics.snapshot import publish_snapshot, publish_snapshot_from
from stripemeter_assets.counters.recompute import recompute_days

NOW = "2025-03-15T12:00:00Z"


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setenv("STRIPEMETER_NOW", NOW)


@pytest.fixture
def paths(tmp_path):
    return {
        "landing": str(tmp_path / "landing"),
        "warehouse": str(tmp_path / "warehouse.duckdb"),
        "analytics": str(tmp_path / "published" / "analytics.duckdb"),
    }


def drop_events(landing: str, customer: str, quantities: list[int], ts: str = "2025-03-10T00:00:00Z") -> None:
    os.makedirs(landing, exist_ok=True)
    name = os.path.join(landing, f"{uuid.uuid4().hex}.jsonl")
    with open(name, "w") as fh:
        for q in quantities:
            fh.write(json.dumps({"tenantId": "acme", "metric": "api_calls", "customerRef": customer,
                                 "quantity": str(q), "ts": ts, "idempotencyKey": uuid.uuid4().hex}) + "\n")


def ingest(conn, landing: str) -> None:
    files = [f for f in list_ready_files(landing, settle=0)
             if f.path not in {p for (p,) in conn.execute("SELECT path FROM landing_files").fetchall()}]
    ingest_batch(conn, files, batch_id=uuid.uuid4().hex, config=settings.parse_config({}), now=settings.now())


def count_usage(conn) -> None:
    """Monthly sums straight from the ledger (standing in for the counters)."""
    conn.execute("DELETE FROM period_usage")
    conn.execute("""INSERT INTO period_usage
        SELECT tenant_id, metric, customer_ref, date_trunc('month', ts), date_trunc('month', ts) + INTERVAL 1 MONTH,
               'sum', sum(quantity), count(*), max(ts), TIMESTAMP '2025-03-15 12:00:00'
        FROM events GROUP BY ALL""")


def read(path: str, sql: str) -> list[tuple]:
    conn = duckdb.connect(path, read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


READER = r"""
import duckdb, json, sys
conn = duckdb.connect(sys.argv[1], read_only=True)
def look():
    return {
        "events": conn.execute("SELECT count(*) FROM events").fetchone()[0],
        "usage": [[c, str(v)] for c, v in conn.execute(
            "SELECT customer_ref, value FROM v_current_period_usage ORDER BY customer_ref").fetchall()],
    }
print(json.dumps(look()), flush=True)
sys.stdin.readline()
print(json.dumps(look()), flush=True)
"""


def test_publishing_beside_an_open_reader_process(paths):
    drop_events(paths["landing"], "cus_1", [1, 2])
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        count_usage(conn)
        publish_snapshot_from(conn, paths["analytics"])

        reader = subprocess.Popen([sys.executable, "-c", READER, paths["analytics"]],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            before = json.loads(reader.stdout.readline())
            assert before == {"events": 2, "usage": [["cus_1", "3.000000000"]]}

            # The reader holds the snapshot open: billing goes on and a new one is published.
            drop_events(paths["landing"], "cus_2", [10, 20, 30])
            ingest(conn, paths["landing"])
            count_usage(conn)
            published = threading.Thread(target=publish_snapshot_from, args=(conn, paths["analytics"]))
            published.start()
            published.join(timeout=60)
            assert not published.is_alive(), "publishing waited for a reader"

            reader.stdin.write("\n")
            reader.stdin.flush()
            after = json.loads(reader.stdout.readline())
            assert reader.wait(timeout=60) == 0, reader.stderr.read()
        finally:
            if reader.poll() is None:
                reader.kill()
    assert after == before  # the open connection keeps its consistent old view
    assert read(paths["analytics"], "SELECT count(*) FROM events") == [(5,)]
    assert read(paths["analytics"], "SELECT customer_ref, value FROM v_current_period_usage ORDER BY 1") == [
        ("cus_1", Decimal(3)), ("cus_2", Decimal(60))]


def test_publish_snapshot_opens_the_warehouse(paths):
    drop_events(paths["landing"], "cus_1", [4])
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
    counts = publish_snapshot(paths["warehouse"], paths["analytics"])
    assert counts["events"] == 1 and counts["landing_files"] == 1
    assert read(paths["analytics"], "SELECT count(*) FROM events") == [(1,)]


def test_publish_defaults_to_settings_paths(paths, monkeypatch):
    monkeypatch.setenv("STRIPEMETER_WAREHOUSE", paths["warehouse"])
    monkeypatch.setenv("STRIPEMETER_ANALYTICS", paths["analytics"])
    publish_snapshot()
    assert read(paths["analytics"], "SELECT count(*) FROM events") == [(0,)]


def test_publish_returns_row_counts_of_every_table(paths):
    drop_events(paths["landing"], "cus_1", [1, 2, 3])
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        count_usage(conn)
        tables = {t for (t,) in conn.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary "
                                             "AND database_name = current_database()").fetchall()}
        counts = publish_snapshot_from(conn, paths["analytics"])
    assert set(counts) == tables - {"event_keys", "event_keys_state"}
    # The ledger's key index has a row per event: copying it whole made each publication follow the ledger's size.
    published = read(paths["analytics"], "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()")
    assert {"events", "period_usage"} <= {t for (t,) in published}
    assert not {"event_keys", "event_keys_state"} & {t for (t,) in published}
    assert (counts["events"], counts["period_usage"], counts["quarantine"]) == (3, 1, 0)


def unfinished(folder: str) -> list[str]:
    """Temporary (dot-named) files anywhere under `folder`."""
    return [name for _, _, names in os.walk(folder) for name in names if name.startswith(".")]


def test_publish_leaves_only_the_snapshot(paths):
    with warehouse.connect(paths["warehouse"]) as conn:
        publish_snapshot_from(conn, paths["analytics"])
        publish_snapshot_from(conn, paths["analytics"])
    assert os.listdir(os.path.dirname(paths["analytics"])) == ["analytics.duckdb"]


def test_failed_publish_keeps_the_previous_snapshot(paths, monkeypatch):
    drop_events(paths["landing"], "cus_1", [1])
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        publish_snapshot_from(conn, paths["analytics"])
        drop_events(paths["landing"], "cus_1", [2])
        ingest(conn, paths["landing"])

        def broken(path):
            raise RuntimeError("disk full")

        monkeypatch.setattr(snapshot, "_create_views", broken)
        with pytest.raises(RuntimeError):
            publish_snapshot_from(conn, paths["analytics"])
        # The writer's connection is still usable afterwards.
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (2,)
    assert read(paths["analytics"], "SELECT count(*) FROM events") == [(1,)]
    assert sorted(os.listdir(os.path.dirname(paths["analytics"]))) == ["analytics.duckdb", "analytics.duckdb.segments"]
    assert unfinished(os.path.dirname(paths["analytics"])) == []


def test_snapshot_records_its_as_of_time(paths):
    with warehouse.connect(paths["warehouse"]) as conn:
        publish_snapshot_from(conn, paths["analytics"])
    assert read(paths["analytics"], "SELECT as_of FROM snapshot_info") == [(datetime(2025, 3, 15, 12),)]


def test_current_period_usage_view_holds_only_the_open_period(paths):
    drop_events(paths["landing"], "cus_1", [1, 2])
    drop_events(paths["landing"], "cus_1", [50], ts="2025-02-20T00:00:00Z")
    drop_events(paths["landing"], "cus_2", [7], ts="2025-03-01T00:00:00Z")
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        count_usage(conn)
        publish_snapshot_from(conn, paths["analytics"])
    rows = read(paths["analytics"], "SELECT customer_ref, period_start, period_end, value, event_count "
                                    "FROM v_current_period_usage ORDER BY customer_ref")
    march, april = datetime(2025, 3, 1), datetime(2025, 4, 1)
    assert rows == [("cus_1", march, april, Decimal(3), 2), ("cus_2", march, april, Decimal(7), 1)]


def test_invoice_preview_counts_events(paths):
    drop_events(paths["landing"], "cus_1", [1, 2, 4])
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        # One of the three is a late event not yet applied: the counter leaves it out.
        late_key, late_ts = conn.execute("SELECT idempotency_key, ts FROM events WHERE quantity = 4").fetchone()
        conn.execute("INSERT INTO late_events VALUES ('acme', 'api_calls', 'cus_1', ?, ?, INTERVAL 3 DAY, "
                     "'pending', 'b', ?, NULL)", [late_key, late_ts, late_ts])
        conn.execute("""INSERT INTO period_usage VALUES ('acme', 'api_calls', 'cus_1', '2025-03-01', '2025-04-01',
                        'sum', 3, 2, '2025-03-10', '2025-03-15')""")
        publish_snapshot_from(conn, paths["analytics"])
    rows = read(paths["analytics"], "SELECT tenant_id, customer_ref, metric, value, event_count, "
                                    "ledger_event_count, late_pending_count FROM v_invoice_preview")
    assert rows == [("acme", "cus_1", "api_calls", Decimal(3), 2, 3, 1)]


def test_drift_view_lists_reconciliation_rows_not_ok(paths):
    with warehouse.connect(paths["warehouse"]) as conn:
        conn.execute("DROP TABLE IF EXISTS reconciliation")
        conn.execute("""CREATE TABLE reconciliation (tenant_id VARCHAR, customer_ref VARCHAR, metric VARCHAR,
            period_start TIMESTAMP, local_total DECIMAL(38, 9), pushed_total DECIMAL(38, 9),
            stripe_total DECIMAL(38, 9), drift DECIMAL(38, 9), status VARCHAR, cause VARCHAR)""")
        conn.execute("""INSERT INTO reconciliation VALUES
            ('acme', 'cus_1', 'api_calls', '2025-03-01', 10, 10, 10, 0, 'ok', NULL),
            ('acme', 'cus_2', 'api_calls', '2025-03-01', 10, 8, 8, 0.2, 'drift', 'under-reported'),
            ('acme', 'cus_3', 'api_calls', '2025-03-01', 10, 10, NULL, NULL, 'pending', 'intent in flight')""")
        publish_snapshot_from(conn, paths["analytics"])
    assert read(paths["analytics"], "SELECT customer_ref, status FROM v_drift ORDER BY 1") == [
        ("cus_2", "drift"), ("cus_3", "pending")]


def test_drift_view_is_empty_before_reconciliation_exists(paths):
    with warehouse.connect(paths["warehouse"]) as conn:
        conn.execute("DROP TABLE IF EXISTS reconciliation")
        publish_snapshot_from(conn, paths["analytics"])
    assert read(paths["analytics"], "SELECT count(*) FROM v_drift") == [(0,)]
    columns = [c for (c,) in read(paths["analytics"], "SELECT column_name FROM duckdb_columns() "
                                                      "WHERE table_name = 'v_drift' ORDER BY column_index")]
    assert columns == ["tenant_id", "customer_ref", "metric", "period_start", "local_total", "pushed_total",
                       "stripe_total", "drift", "status", "cause"]


def test_views_bind_to_the_snapshot_not_the_writer_session(paths):
    # The writer's session has TEMP tables of its own (ingest staging); the
    # snapshot's views must read the snapshot's tables.
    with warehouse.connect(paths["warehouse"]) as conn:
        conn.execute("CREATE TEMP TABLE period_usage AS SELECT * FROM main.period_usage")
        conn.execute("INSERT INTO temp.period_usage VALUES ('x', 'm', 'c', '2025-03-01', '2025-04-01', "
                     "'sum', 1, 1, '2025-03-02', '2025-03-02')")
        publish_snapshot_from(conn, paths["analytics"])
    assert read(paths["analytics"], "SELECT count(*) FROM v_current_period_usage") == [(0,)]


def segment_files(paths) -> dict[str, float]:
    folder = snapshot.segments_dir(paths["analytics"])
    return {os.path.join(d, n): os.stat(os.path.join(d, n)).st_mtime_ns
            for d, _, names in os.walk(folder) for n in names}


def test_each_publication_writes_only_the_rows_appended_since_the_last(paths):
    drop_events(paths["landing"], "cus_1", list(range(1, 1001)))
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        publish_snapshot_from(conn, paths["analytics"])
        first = segment_files(paths)
        drop_events(paths["landing"], "cus_2", [5, 6])
        ingest(conn, paths["landing"])
        counts = publish_snapshot_from(conn, paths["analytics"])
        after = segment_files(paths)
    assert counts["events"] == 1002 and counts["landing_files"] == 2
    # the first publication's segments are untouched; new ones hold the two new rows and the new file
    assert {p: m for p, m in after.items() if p in first} == first
    new = {os.path.basename(os.path.dirname(p)): p for p in set(after) - set(first)}
    assert sorted(new) == ["events", "landing_files"]
    assert duckdb.connect().execute(f"SELECT customer_ref, quantity FROM read_parquet('{new['events']}') "
                                    "ORDER BY 2").fetchall() == [("cus_2", Decimal(5)), ("cus_2", Decimal(6))]
    assert duckdb.connect().execute(f"SELECT rows_loaded FROM read_parquet('{new['landing_files']}')").fetchall() == [(2,)]
    assert read(paths["analytics"], "SELECT count(*), sum(quantity) FROM events") == [(1002, Decimal(500511))]


def test_segments_merge_in_tiers_and_an_open_reader_keeps_its_files(paths):
    with warehouse.connect(paths["warehouse"]) as conn:
        drop_events(paths["landing"], "cus_0", [1])
        ingest(conn, paths["landing"])
        publish_snapshot_from(conn, paths["analytics"])
        reader = duckdb.connect(paths["analytics"], read_only=True)
        try:
            for n in range(1, 25):
                drop_events(paths["landing"], f"cus_{n}", [n + 1])
                ingest(conn, paths["landing"])
                publish_snapshot_from(conn, paths["analytics"])
            # the reader's snapshot names the first segment, merged away since but kept
            assert reader.execute("SELECT count(*), sum(quantity) FROM events").fetchall() == [(1, Decimal(1))]
        finally:
            reader.close()
        live = conn.execute("SELECT count(*) FROM snapshot_segments WHERE table_name = 'events' "
                            "AND retired_at IS NULL").fetchall()
    assert live[0][0] < snapshot.MERGE_FANOUT
    assert read(paths["analytics"], "SELECT count(*), sum(quantity) FROM events") == [(25, Decimal(sum(range(1, 26))))]
    assert read(paths["analytics"], "SELECT count(DISTINCT idempotency_key) FROM events") == [(25,)]


def test_retired_segments_are_deleted_once_no_reader_can_need_them(paths, monkeypatch):
    monkeypatch.setattr(snapshot, "RETAIN", snapshot.timedelta(0))
    with warehouse.connect(paths["warehouse"]) as conn:
        for n in range(12):
            drop_events(paths["landing"], f"cus_{n}", [1])
            ingest(conn, paths["landing"])
            publish_snapshot_from(conn, paths["analytics"])
        live = {p for (p,) in conn.execute("SELECT path FROM snapshot_segments").fetchall()}
    assert set(segment_files(paths)) == live
    assert read(paths["analytics"], "SELECT count(*) FROM events") == [(12,)]


def test_a_rewritten_table_is_published_again_whole(paths):
    drop_events(paths["landing"], "cus_1", [1, 2, 3])
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        publish_snapshot_from(conn, paths["analytics"])
        # not something billing does; a restore from backup could
        conn.execute("DELETE FROM events WHERE quantity = 2")
        conn.execute("CHECKPOINT")
        counts = publish_snapshot_from(conn, paths["analytics"])
    assert counts["events"] == 2
    assert read(paths["analytics"], "SELECT quantity FROM events ORDER BY 1") == [(Decimal(1),), (Decimal(3),)]


def count_days(conn, first: str, last: str) -> None:
    with warehouse.transaction(conn):
        recompute_days(conn, datetime.fromisoformat(first), datetime.fromisoformat(last) + timedelta(days=1),
                       settings.now())


def daily_files(paths) -> dict[str, int]:
    """The live daily_usage files by name prefix (unit), with their mtimes."""
    folder = os.path.join(snapshot.segments_dir(paths["analytics"]), "daily_usage")
    return {n: os.stat(os.path.join(folder, n)).st_mtime_ns for n in os.listdir(folder) if not n.startswith(".")}


def same_daily_usage(conn, paths) -> bool:
    sql = "SELECT * FROM daily_usage ORDER BY ALL"
    return read(paths["analytics"], sql) == conn.execute(sql).fetchall() != []


def test_a_publication_rewrites_only_the_days_recounted_since_the_last(paths):
    # as of 15 March: January is old (one file for the month), March days have a file each
    for customer, ts in (("cus_1", "2025-01-05T10:00:00Z"), ("cus_2", "2025-01-20T10:00:00Z"),
                         ("cus_1", "2025-03-10T10:00:00Z"), ("cus_3", "2025-03-12T10:00:00Z")):
        drop_events(paths["landing"], customer, [2, 3], ts=ts)
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        count_days(conn, "2025-01-01", "2025-03-14")
        publish_snapshot_from(conn, paths["analytics"])
        first = daily_files(paths)
        assert sorted(n.rsplit("-", 1)[0] for n in first) == ["2025-01", "2025-03-10", "2025-03-12"]
        assert same_daily_usage(conn, paths)

        drop_events(paths["landing"], "cus_4", [7], ts="2025-03-12T11:00:00Z")
        ingest(conn, paths["landing"])
        count_days(conn, "2025-03-12", "2025-03-12")
        publish_snapshot_from(conn, paths["analytics"])
        second = daily_files(paths)
        assert same_daily_usage(conn, paths)
        # only 12 March was written again; its old file is retired (kept for open readers)
        assert {n: m for n, m in second.items() if n in first} == first
        [new] = set(second) - set(first)
        assert new.rsplit("-", 1)[0] == "2025-03-12"

        drop_events(paths["landing"], "cus_5", [1], ts="2025-01-07T11:00:00Z")  # a replayed old day
        ingest(conn, paths["landing"])
        count_days(conn, "2025-01-07", "2025-01-07")
        publish_snapshot_from(conn, paths["analytics"])
        third = daily_files(paths)
        assert same_daily_usage(conn, paths)
        [new] = set(third) - set(second)
        assert new.rsplit("-", 1)[0] == "2025-01"


def test_days_become_one_file_a_month_as_they_age_and_days_without_a_version_are_published(paths, monkeypatch):
    monkeypatch.setattr(snapshot, "RETAIN", snapshot.timedelta(0))
    for day in ("10", "11"):
        drop_events(paths["landing"], "cus_1", [1], ts=f"2025-03-{day}T10:00:00Z")
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        count_days(conn, "2025-03-10", "2025-03-11")
        conn.execute("DELETE FROM daily_usage_days")  # counted before daily_usage had versions
        publish_snapshot_from(conn, paths["analytics"])
        assert sorted(n.rsplit("-", 1)[0] for n in daily_files(paths)) == ["2025-03-10", "2025-03-11"]
        assert same_daily_usage(conn, paths)

        conn.execute("ALTER TABLE daily_usage ADD COLUMN note VARCHAR DEFAULT 'n'")  # a later schema
        publish_snapshot_from(conn, paths["analytics"])
        assert read(paths["analytics"], "SELECT DISTINCT note FROM daily_usage") == [("n",)]
        # a publication killed while writing units left its scratch folder
        os.makedirs(os.path.join(snapshot.segments_dir(paths["analytics"]), "daily_usage", ".dead.tmp", "x"))
        publish_snapshot_from(conn, paths["analytics"], as_of=datetime(2025, 5, 2))
        assert sorted(n.rsplit("-", 1)[0] for n in daily_files(paths)) == ["2025-03"]
        assert same_daily_usage(conn, paths)


def test_a_reader_keeps_the_files_of_its_snapshot_for_a_day_after_they_are_retired(paths):
    # RETAIN runs from a file's retirement, not from its writing: a unit written days ago and
    # retired now is still named by the snapshot a reader holds open.
    drop_events(paths["landing"], "cus_1", [2], ts="2025-03-10T10:00:00Z")
    with warehouse.connect(paths["warehouse"]) as conn:
        ingest(conn, paths["landing"])
        count_days(conn, "2025-03-10", "2025-03-10")
        publish_snapshot_from(conn, paths["analytics"])
        folder = os.path.join(snapshot.segments_dir(paths["analytics"]), "daily_usage")
        for name in os.listdir(folder):
            days_ago = datetime.now().timestamp() - 3 * 86400
            os.utime(os.path.join(folder, name), (days_ago, days_ago))
        reader = duckdb.connect(paths["analytics"], read_only=True)
        try:
            drop_events(paths["landing"], "cus_2", [5], ts="2025-03-10T11:00:00Z")
            ingest(conn, paths["landing"])
            count_days(conn, "2025-03-10", "2025-03-10")
            publish_snapshot_from(conn, paths["analytics"])
            assert reader.execute("SELECT sum(sum_quantity) FROM daily_usage").fetchall() == [(Decimal(2),)]
        finally:
            reader.close()
    assert read(paths["analytics"], "SELECT sum(sum_quantity) FROM daily_usage") == [(Decimal(7),)]
