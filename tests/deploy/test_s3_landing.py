"""Landing in a bucket: a real S3 API (moto in server mode) read through s3fs,
by the same listing, sensor and ingest as a local folder."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from stripemeter_assets import settings
from stripemeter_assets.definitions import defs
from stripemeter_assets.ledger import ingest_batch, list_ready_files
from stripemeter_assets.ledger.landing import archive, local_copy
from stripemeter_assets.cli.runner import execute_request
from stripemeter_assets.warehouse import connect
from tests.conftest import event
from tests.deploy.conftest import Bucket, evaluate_sensor

EVENTS = [
    event(quantity="5", ts="2025-03-10T10:00:00Z", idempotencyKey="k1"),
    event(quantity="2.5", ts="2025-03-10T11:00:00Z"),
    event(customer="cus_B", quantity="7", ts="2025-03-11T00:00:00+02:00", resourceId="seat-1"),
    event(metric="storage_gb", quantity="12.000000001", ts="2025-03-12T08:30:00.123456Z", meta={"region": "eu"}),
]
CSV_COLUMNS = ["tenantId", "metric", "customerRef", "quantity", "ts", "idempotencyKey", "resourceId"]


def _csv(events: list[dict]) -> str:
    lines = [",".join(CSV_COLUMNS)] + [",".join(str(e.get(c, "")) for c in CSV_COLUMNS) for e in events]
    return "\n".join(lines) + "\n"


def _drop_every_format(env) -> list[Path]:
    """One file per landing format in the local folder (some rows shared
    across files, one bad row), returned so the same bytes can go to S3."""
    return [
        env.drop_jsonl("a.jsonl", EVENTS[:2] + ['{"tenantId": "acme", "metric": "api_calls"']),
        env.drop_jsonl("b.jsonl.gz", EVENTS[1:3], gz=True),
        env.drop_text("c.csv", _csv([EVENTS[0], event(quantity="3", ts="2025-03-13T00:00:00Z")])),
        env.drop_parquet("d.parquet", [event(quantity="4", ts="2025-03-14T00:00:00Z"), EVENTS[2]]),
        env.drop_jsonl("e.ndjson", EVENTS[3:]),
    ]


def _ingest(url: str, warehouse: str, batch_id: str = "batch-1"):
    files = list_ready_files(url, settle=0)
    with connect(warehouse) as conn:
        return ingest_batch(conn, files, batch_id=batch_id, config=settings.load_config(), now=settings.now())


def _rows(warehouse: str, query: str) -> list[tuple]:
    with duckdb.connect(warehouse, read_only=True) as conn:
        return conn.execute(query).fetchall()


def _requested_files(requests) -> list[str]:
    return sorted(f for r in requests for f in r.run_config["ops"]["usage_events"]["config"]["files"])


def _same_second_drops(endpoint: str, monkeypatch, first: dict[str, bytes], then, second: dict[str, bytes]):
    """Puts `first`, calls `then()`, puts `second`, all within one
    LastModified second (S3 keeps whole seconds), in a fresh bucket that
    becomes the landing; retries if the clock crossed a second boundary.
    Plain PUTs, in parallel, to fit the second: a PUT is atomic on S3.
    Returns (bucket, what `then()` returned)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            bucket = Bucket(endpoint)
            monkeypatch.setenv("STRIPEMETER_LANDING", bucket.url)
            while time.time() % 1 > 0.05:  # start at the top of a second
                time.sleep(0.005)
            list(pool.map(lambda item: bucket.put_raw(bucket.key(item[0]), item[1]), first.items()))
            stamps = {bucket.head(name)["LastModified"] for name in first}
            result = then()
            list(pool.map(lambda item: bucket.put_raw(bucket.key(item[0]), item[1]), second.items()))
            stamps |= {bucket.head(name)["LastModified"] for name in second}
            if len(stamps) == 1:
                return bucket, result
    pytest.fail("could not put the files within one second in ten attempts")


def test_bucket_lists_ready_files_as_s3_urls_with_sizes_and_last_modified(env, bucket):
    bucket.drop("a.jsonl", b'{"x": 1}\n')
    bucket.drop("2025/03/b.csv.gz", b"\x1f\x8b not really gzip")
    for key in ["usage/in/.hidden.jsonl", "usage/in/c.jsonl.tmp", "usage/in/d.jsonl.part",
                "usage/in/e.JSONL.TMP", "usage/in/.staging/f.jsonl", "usage/in/notes.txt",
                "usage/in/empty/", "usage/inbox/g.jsonl", "elsewhere/h.jsonl"]:
        bucket.put_raw(key, b"{}\n")

    files = list_ready_files(bucket.url, settle=0)

    assert [f.path for f in files] == [f"s3://{bucket.name}/usage/in/2025/03/b.csv.gz",
                                       f"s3://{bucket.name}/usage/in/a.jsonl"]
    for f in files:
        head = bucket.client.head_object(Bucket=bucket.name, Key=f.path.removeprefix(f"s3://{bucket.name}/"))
        assert f.size == head["ContentLength"]
        assert f.mtime == head["LastModified"].timestamp()
        assert f.etag == head["ETag"].strip('"')
    assert [f.format for f in files] == ["csv", "jsonl"]
    # Just written: not settled yet; a minute later both are.
    assert list_ready_files(bucket.url, settle=60) == []
    assert list_ready_files(bucket.url, settle=60, now=max(f.mtime for f in files) + 61) == files


def test_a_new_object_appears_in_the_next_listing_despite_fsspec_caches(env, bucket):
    bucket.drop("a.jsonl", b"{}\n")
    assert len(list_ready_files(bucket.url, settle=0)) == 1
    bucket.drop("b.jsonl", b"{}\n")
    bucket.client.delete_object(Bucket=bucket.name, Key=bucket.key("a.jsonl"))
    assert [f.path.rsplit("/", 1)[-1] for f in list_ready_files(bucket.url, settle=0)] == ["b.jsonl"]
    # the listing walks folders (to skip .ingested-like dot-folders): each is listed afresh
    bucket.drop("2025/03/c.jsonl", b"{}\n")
    assert len(list_ready_files(bucket.url, settle=0)) == 2
    bucket.drop("2025/03/d.jsonl", b"{}\n")
    assert [f.path.rsplit("/", 1)[-1] for f in list_ready_files(bucket.url, settle=0)] == ["c.jsonl", "d.jsonl",
                                                                                            "b.jsonl"]


def test_an_empty_prefix_lists_nothing(env, bucket):
    assert list_ready_files(bucket.url + "/not-yet", settle=0) == []


def test_download_hashes_the_bytes_as_stored(env, bucket):
    body = b'{"tenantId": "acme"}\n' * 1000
    bucket.drop("big.jsonl", body)
    [file] = list_ready_files(bucket.url, settle=0)
    with local_copy(file) as (local, digest):
        assert Path(local).read_bytes() == body
        assert Path(local).name.endswith(".jsonl")  # a neutral name: DuckDB reads landing names as globs
    assert digest == hashlib.sha256(body).hexdigest()
    assert not Path(local).exists()  # the temporary copy is gone


def test_bucket_files_of_every_format_load_once_and_a_rerun_adds_nothing(env, bucket):
    for path in _drop_every_format(env):
        bucket.drop(path.name, path.read_bytes())
    warehouse = str(env.root / "s3.duckdb")

    first = _ingest(bucket.url, warehouse, "b1")
    again = _ingest(bucket.url, warehouse, "b2")

    assert {f.status for f in first.files} == {"loaded"}
    assert first.total("rows_loaded") == 6
    assert first.total("rows_quarantined") == 1  # the truncated JSON line
    assert {f.status for f in again.files} == {"skipped"}
    assert again.total("rows_loaded") == 0
    assert _rows(warehouse, "SELECT count(*), sum(quantity) FROM events") == [(6, Decimal("33.500000001"))]
    hashes = dict(_rows(warehouse, "SELECT path, content_hash FROM landing_files WHERE batch_id = 'b1'"))
    for path in env.landing.iterdir():
        assert hashes[f"{bucket.url}/{path.name}"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_files_in_a_folder_and_a_bucket_give_identical_tables(env, bucket):
    for path in _drop_every_format(env):
        bucket.drop(path.name, path.read_bytes())
    local_wh, s3_wh = str(env.root / "local.duckdb"), str(env.root / "s3.duckdb")
    _ingest(str(env.landing), local_wh)
    _ingest(bucket.url, s3_wh)

    base = "regexp_extract(source_file, '[^/]+$') AS file_name"
    for query in [
        f"SELECT * EXCLUDE (source_file), {base} FROM events ORDER BY seq",
        f"SELECT * EXCLUDE (source_file), {base} FROM quarantine ORDER BY ALL",
        "SELECT regexp_extract(path, '[^/]+$'), content_hash, format, size_bytes, rows_total, rows_loaded, "
        "rows_duplicate, rows_quarantined, status FROM landing_files ORDER BY file_seq",
        "SELECT * FROM watermarks ORDER BY ALL",
    ]:
        local_rows, s3_rows = _rows(local_wh, query), _rows(s3_wh, query)
        assert local_rows and local_rows == s3_rows, query
    assert {p for (p,) in _rows(s3_wh, "SELECT DISTINCT source_file FROM events")} <= {
        f"{bucket.url}/{p.name}" for p in env.landing.iterdir()}


def test_sensor_requests_files_with_equal_last_modified_and_any_name_order(env, instance, s3_endpoint, monkeypatch):
    odd_names = ["a.jsonl", "Z.jsonl", "10.jsonl", "9.jsonl", "é.jsonl", "y y+z=1.jsonl", "0/deep.jsonl"]
    bodies = {name: json.dumps(event(quantity=str(i + 1), idempotencyKey=name)).encode() + b"\n"
              for i, name in enumerate(odd_names)}
    bucket, first = _same_second_drops(
        s3_endpoint, monkeypatch,
        {"m.jsonl": json.dumps(event(quantity="100")).encode() + b"\n"},
        lambda: evaluate_sensor(defs, instance, "landing_sensor"),
        bodies,
    )
    second = evaluate_sensor(defs, instance, "landing_sensor")
    third = evaluate_sensor(defs, instance, "landing_sensor")

    # Neither a LastModified high-water mark nor a last-key cursor would see
    # these: same second as m.jsonl, and most sort before it.
    assert _requested_files(first) == [f"{bucket.url}/m.jsonl"]
    assert _requested_files(second) == sorted(f"{bucket.url}/{name}" for name in odd_names)
    assert third == []
    for request in first + second:
        assert execute_request(defs, instance, request).success
    assert env.sql("SELECT count(*), sum(quantity) FROM events") == [(8, Decimal(100 + 28))]
    assert sorted(p for (p,) in env.sql("SELECT path FROM landing_files WHERE status = 'loaded'")) == sorted(
        f"{bucket.url}/{name}" for name in ["m.jsonl", *odd_names])


def test_object_rewritten_within_the_same_second_and_size_is_requested_again(env, instance, s3_endpoint,
                                                                             monkeypatch):
    bucket, first = _same_second_drops(
        s3_endpoint, monkeypatch,
        {"a.jsonl": b'{"v": 1}\n'},
        lambda: (list_ready_files(settings.landing_url(), settle=0),
                 evaluate_sensor(defs, instance, "landing_sensor")),
        {"a.jsonl": b'{"v": 2}\n'},  # same key, same size, same LastModified second
    )
    [before], _ = first
    [after] = list_ready_files(bucket.url, settle=0)
    assert (after.mtime, after.size) == (before.mtime, before.size)
    assert after.version != before.version  # told apart by the ETag
    assert _requested_files(evaluate_sensor(defs, instance, "landing_sensor")) == [f"{bucket.url}/a.jsonl"]


def test_ingest_job_from_the_sensor_loads_the_bucket_once(env, instance, bucket, monkeypatch):
    monkeypatch.setenv("STRIPEMETER_LANDING", bucket.url)
    for path in _drop_every_format(env):
        bucket.drop(path.name, path.read_bytes())

    [request] = evaluate_sensor(defs, instance, "landing_sensor")
    outcome = execute_request(defs, instance, request)
    assert outcome.success and outcome.job == "ingest_job"
    assert env.sql("SELECT count(*) FROM events") == [(6,)]
    assert evaluate_sensor(defs, instance, "landing_sensor") == []
    # Loaded objects left the listed prefix (and no probe object stays behind).
    assert list_ready_files(bucket.url, settle=0) == []
    assert sorted(bucket.keys()) == sorted(f".ingested/2025-03-20/{outcome.run_id}/{name}" for name in
                                           ["a.jsonl", "b.jsonl.gz", "c.csv", "d.parquet", "e.ndjson"])

    # The same content dropped again: skipped, and moved out as well.
    bucket.drop("again.ndjson", (env.landing / "e.ndjson").read_bytes())
    rerun = defs.resolve_job_def("ingest_job").execute_in_process(instance=instance)
    assert rerun.success
    assert env.sql("SELECT count(*) FROM events") == [(6,)]
    assert env.sql("SELECT DISTINCT status FROM landing_files WHERE batch_id = ?", [rerun.run_id]) == [("skipped",)]
    assert list_ready_files(bucket.url, settle=0) == []


def test_an_object_rewritten_after_its_batch_listed_it_stays_in_the_bucket(env, bucket):
    bucket.drop("a.jsonl", b'{"v": 1}\n')
    listed = list_ready_files(bucket.url, settle=0)
    bucket.drop("a.jsonl", b'{"v": 2}\n')  # a new version, not read by that batch
    assert archive(bucket.url, listed, batch_id="b1", day="2025-03-20") == []
    assert bucket.keys() == ["a.jsonl"]
    assert bucket.client.get_object(Bucket=bucket.name, Key=bucket.key("a.jsonl"))["Body"].read() == b'{"v": 2}\n'



@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "FSSPEC_S3_ENDPOINT_URL"])
def test_the_s3_endpoint_can_come_from_each_documented_variable(bucket, s3_endpoint, variable):
    bucket.drop("a.jsonl", b"{}\n")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "FSSPEC_"))}
    environ[variable] = s3_endpoint  # FSSPEC_* is read at import: a fresh process
    code = ("import sys; from stripemeter_assets.ledger.landing import list_ready_files; "
            "print(*[f.path for f in list_ready_files(sys.argv[1], settle=0)])")
    out = subprocess.run([sys.executable, "-c", code, bucket.url], env=environ, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.split() == [f"{bucket.url}/a.jsonl"]
