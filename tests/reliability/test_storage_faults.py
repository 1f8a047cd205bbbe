"""Storage faults: a warehouse that cannot be written, a disk that fills up
mid-batch, and landing files cut short in transit."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from stripemeter_assets.cli.gen_events import write_bulk_jsonl
from stripemeter_assets.warehouse import literal
from tests.conftest import event
from tests.reliability.conftest import assert_ledger_consistent, remount, run_cli, tmpfs

GOOD = [event(customer=f"cus_{i}", quantity=str(i), idempotencyKey=f"good-{i}") for i in range(1, 11)]


def _use_warehouse(env, monkeypatch, path: Path) -> None:
    env.warehouse = path
    monkeypatch.setenv("STRIPEMETER_WAREHOUSE", str(path))


def _landing_untouched(env, names: set[str]) -> None:
    assert {p.name for p in env.landing.iterdir()} == names


# -- unwritable warehouse --------------------------------------------------------

def test_warehouse_path_under_a_regular_file_fails_clearly_and_writes_nothing(env, monkeypatch):
    blocker = env.root / "not-a-dir"
    blocker.write_text("I am a file")
    _use_warehouse(env, monkeypatch, blocker / "warehouse.duckdb")
    env.drop_jsonl("a.jsonl", GOOD)
    with pytest.raises(OSError) as info:
        env.ingest()
    assert str(blocker) in str(info.value)
    assert blocker.read_text() == "I am a file"
    _landing_untouched(env, {"a.jsonl"})


def test_catch_up_against_an_unwritable_warehouse_exits_non_zero_with_the_cause_recorded(env, instance, monkeypatch):
    blocker = env.root / "not-a-dir"
    blocker.write_text("")
    _use_warehouse(env, monkeypatch, blocker / "warehouse.duckdb")
    env.drop_jsonl("a.jsonl", GOOD)
    done = run_cli("catch-up")
    assert done.returncode != 0
    assert "FAILED" in done.stdout and "ingest_job" in done.stdout
    [run] = instance.get_runs(filters=dg.RunsFilter(job_name="ingest_job"))
    errors = [e.dagster_event.step_failure_data.error for e in instance.all_logs(run.run_id)
              if e.dagster_event and e.dagster_event.is_step_failure]
    texts = [err.message + (err.cause.message if err.cause else "") for err in errors]
    assert any(str(blocker) in text for text in texts), texts


def test_read_only_filesystem_fails_the_batch_clearly_and_the_files_load_once_it_is_writable(env, monkeypatch):
    with tmpfs(env.root / "wh", size="64m") as mount:
        _use_warehouse(env, monkeypatch, mount / "warehouse.duckdb")
        env.drop_jsonl("a.jsonl", GOOD[:5])
        env.ingest("b1")
        remount(mount, "ro")
        env.drop_jsonl("b.jsonl", GOOD[5:])
        try:
            with pytest.raises(duckdb.Error, match="(?i)read-only|read only"):
                env.ingest("b2")
        finally:
            remount(mount, "rw")
        assert env.sql("SELECT count(*) FROM events") == [(5,)]
        assert env.sql("SELECT batch_id FROM landing_files") == [("b1",)]
        result = env.ingest("b3")
        assert {Path(f.path).name: f.status for f in result.files} == {"a.jsonl": "skipped", "b.jsonl": "loaded"}
        assert env.sql("SELECT count(*), count(DISTINCT idempotency_key), sum(quantity) FROM events") == [
            (10, 10, sum(int(e["quantity"]) for e in GOOD))]
        assert_ledger_consistent(env)


def test_warehouse_on_a_read_only_mount_is_never_created(env, monkeypatch):
    with tmpfs(env.root / "ro", size="1m", options="ro") as mount:
        _use_warehouse(env, monkeypatch, mount / "warehouse.duckdb")
        env.drop_jsonl("a.jsonl", GOOD)
        with pytest.raises(duckdb.Error, match="(?i)read-only|read only"):
            env.ingest()
        assert list(mount.iterdir()) == []


# -- disk full -------------------------------------------------------------------

def test_disk_full_mid_batch_fails_cleanly_and_after_freeing_space_the_same_files_load_once(env, monkeypatch):
    with tmpfs(env.root / "wh", size="2m") as mount:
        _use_warehouse(env, monkeypatch, mount / "warehouse.duckdb")
        env.drop_jsonl("a.jsonl", GOOD)
        env.ingest("small")
        write_bulk_jsonl(env.landing / "big.jsonl", 60_000, start="2025-03-01", days=15, seed=3)
        with pytest.raises(duckdb.Error, match="(?i)no space left"):
            env.ingest("too-big")
        # The warehouse still opens, on the still-full disk, with only the first batch.
        assert env.sql("SELECT count(*), sum(quantity) FROM events") == [(10, 55)]
        assert env.sql("SELECT path, status, batch_id FROM landing_files") == [
            (str(env.landing / "a.jsonl"), "loaded", "small")]
        assert env.sql("SELECT count(*) FROM quarantine") == [(0,)]
        remount(mount, "size=256m")
        result = env.ingest("after")
        assert {Path(f.path).name: f.status for f in result.files} == {"a.jsonl": "skipped", "big.jsonl": "loaded"}
        assert env.sql("SELECT count(*), count(DISTINCT (tenant_id, idempotency_key)) FROM events") == [
            (60_010, 60_010)]
        assert env.sql("SELECT path, count(*) FROM landing_files WHERE status = 'loaded' GROUP BY ALL ORDER BY 1") == [
            (str(env.landing / "a.jsonl"), 1), (str(env.landing / "big.jsonl"), 1)]
        assert_ledger_consistent(env)


# -- files cut short -------------------------------------------------------------

ROWS = [event(customer=f"cus_{i % 7}", quantity=str(i), idempotencyKey=f"k{i}") for i in range(5000)]


def _parquet_bytes(tmp_path: Path) -> bytes:
    path = tmp_path / "full.parquet"
    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT 'acme' AS tenantId, 'api_calls' AS metric, 'cus_' || (i % 7) AS customerRef,
                   i::VARCHAR AS quantity, '2025-03-10T10:00:00Z' AS ts, 'p' || i AS idempotencyKey
                   FROM range(5000) r(i)""")
    con.execute(f"COPY t TO {literal(str(path))} (FORMAT parquet, ROW_GROUP_SIZE 1000)")
    con.close()
    return path.read_bytes()


def test_truncated_gzip_and_parquet_are_rejected_whole_and_the_rest_of_the_batch_loads(env, tmp_path):
    jsonl = "".join(json.dumps(e) + "\n" for e in ROWS).encode()
    gz = gzip.compress(jsonl)
    csv = ("tenantId,metric,customerRef,quantity,ts,idempotencyKey\n"
           + "".join(f"acme,api_calls,cus_1,{i},2025-03-10T10:00:00Z,c{i}\n" for i in range(5000))).encode()
    csv_gz = gzip.compress(csv)
    parquet = _parquet_bytes(tmp_path)
    cut = {
        "half.jsonl.gz": gz[: len(gz) // 2],
        "no-trailer.jsonl.gz": gz[:-4],  # deflate complete, CRC and size missing
        "half.csv.gz": csv_gz[: len(csv_gz) // 2],
        "half.parquet": parquet[: len(parquet) // 2],
        "no-magic.parquet": parquet[:-4],
    }
    for name, data in cut.items():
        (env.landing / name).write_bytes(data)
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest("b1")
    statuses = {Path(f.path).name: (f.status, f.rows_loaded) for f in result.files}
    assert statuses == {**{n: ("rejected", 0) for n in cut}, "good.jsonl": ("loaded", 10)}
    assert all(f.error and str(env.landing) in f.error for f in result.files if f.status == "rejected")
    assert env.sql("SELECT count(*) FROM events") == [(10,)]  # not one row of a cut file
    assert sorted(env.sql("SELECT source_file FROM quarantine WHERE reason = 'unparseable_file'")) == sorted(
        (str(env.landing / n),) for n in cut)
    assert_ledger_consistent(env)

    # The producer publishes the complete files again under the same names: they load, once.
    (env.landing / "half.jsonl.gz").write_bytes(gz)
    (env.landing / "half.csv.gz").write_bytes(csv_gz)
    (env.landing / "half.parquet").write_bytes(parquet)
    for name in ("no-trailer.jsonl.gz", "no-magic.parquet"):
        os.remove(env.landing / name)
    result = env.ingest("b2")
    loaded = {Path(f.path).name: f.rows_loaded for f in result.files if f.status == "loaded"}
    assert loaded == {"half.jsonl.gz": 5000, "half.csv.gz": 5000, "half.parquet": 5000}
    assert env.sql("SELECT count(*) FROM events") == [(15_010,)]
    assert_ledger_consistent(env)


def test_parquet_with_a_corrupted_middle_is_rejected_or_loaded_whole_never_in_part(env, tmp_path):
    parquet = bytearray(_parquet_bytes(tmp_path))
    middle = len(parquet) // 2
    parquet[middle:middle + 64] = bytes(64)  # a data page zeroed; footer intact
    (env.landing / "corrupt.parquet").write_bytes(bytes(parquet))
    env.drop_jsonl("good.jsonl", GOOD)
    result = env.ingest()
    statuses = {Path(f.path).name: f for f in result.files}
    assert statuses["good.jsonl"].rows_loaded == 10
    corrupt = statuses["corrupt.parquet"]
    assert corrupt.status in ("rejected", "loaded")
    if corrupt.status == "loaded":
        assert corrupt.rows_total == 5000
    assert_ledger_consistent(env)
