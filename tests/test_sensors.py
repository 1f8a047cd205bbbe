"""landing_sensor and watermark_sensor, evaluated with build_sensor_context
against a real instance."""

import json
import os
import shutil
import time

import dagster as dg

from stripemeter_assets.definitions import defs
from stripemeter_assets.resources import LandingResource
from stripemeter_assets.cli.runner import catch_up, execute_request
from stripemeter_assets.sensors import landing_sensor, watermark_sensor
from tests.conftest import event


def _tick(sensor, instance, cursor=None, **resources):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources or None,
                                      definitions=defs)
    return sensor.evaluate_tick(context)


def test_first_tick_requests_every_ready_file_with_a_batch_run_key(env, instance):
    env.drop_jsonl("a.jsonl", [event()])
    env.drop_jsonl("b.jsonl", [event(quantity="2")])
    result = _tick(landing_sensor, instance, landing=LandingResource())
    [run] = result.run_requests
    files = run.run_config["ops"]["usage_events"]["config"]["files"]
    assert sorted(os.path.basename(f) for f in files) == ["a.jsonl", "b.jsonl"]
    assert run.run_key.startswith("ingest-") and len(run.run_key) > len("ingest-")
    assert set(json.loads(result.cursor)) == set(files)


def test_nothing_new_skips_and_a_new_file_is_requested_alone(env, instance):
    env.drop_jsonl("a.jsonl", [event()])
    first = _tick(landing_sensor, instance, landing=LandingResource())
    again = _tick(landing_sensor, instance, cursor=first.cursor, landing=LandingResource())
    assert not again.run_requests and again.skip_message
    env.drop_jsonl("b.jsonl", [event(quantity="2")])
    third = _tick(landing_sensor, instance, cursor=again.cursor, landing=LandingResource())
    [run] = third.run_requests
    assert [os.path.basename(f) for f in run.run_config["ops"]["usage_events"]["config"]["files"]] == ["b.jsonl"]
    assert run.run_key != first.run_requests[0].run_key


def test_files_still_being_written_are_ignored(env, instance, monkeypatch):
    env.drop_jsonl(".hidden.jsonl", [event()])
    env.drop_jsonl("a.jsonl.tmp", [event()])
    env.drop_jsonl("b.jsonl.part", [event()])
    env.drop_jsonl("fresh.jsonl", [event()])
    monkeypatch.setenv("STRIPEMETER_SETTLE_SECONDS", "60")  # fresh.jsonl was modified just now
    assert not _tick(landing_sensor, instance, landing=LandingResource()).run_requests
    old = time.time() - 120
    os.utime(env.landing / "fresh.jsonl", (old, old))
    [run] = _tick(landing_sensor, instance, landing=LandingResource()).run_requests
    assert [os.path.basename(f) for f in run.run_config["ops"]["usage_events"]["config"]["files"]] == ["fresh.jsonl"]


def test_ingest_run_from_the_sensor_loads_the_files_and_reports_days(env, instance):
    env.drop_jsonl("a.jsonl", [event(ts="2025-03-10T10:00:00Z"), event(ts="2025-03-12T10:00:00Z", quantity="4")])
    [request] = _tick(landing_sensor, instance, landing=LandingResource()).run_requests
    outcome = execute_request(defs, instance, request, default_job="ingest_job")
    assert outcome.success
    [record] = instance.fetch_materializations(dg.AssetKey("usage_events"), limit=1).records
    metadata = record.asset_materialization.metadata
    assert metadata["rows_loaded"].value == 2
    assert metadata["days_touched"].value == ["2025-03-10", "2025-03-12"]
    assert env.sql("SELECT count(*) FROM events") == [(2,)]


def test_ingested_files_leave_the_landing_and_the_sensor_forgets_them(env, instance):
    """Listing the landing (each tick, each run) and the sensor's cursor, kept
    by every tick record, grew with every file ever dropped."""
    env.drop_jsonl("a.jsonl", [event()])
    shutil.copy(env.landing / "a.jsonl", env.landing / "copy.jsonl")
    env.drop_text("broken.parquet", "this is not parquet")
    first = _tick(landing_sensor, instance, landing=LandingResource())
    outcome = execute_request(defs, instance, first.run_requests[0], default_job="ingest_job")
    assert outcome.success
    archived = env.landing / ".ingested" / "2025-03-20" / outcome.run_id
    assert sorted(p.name for p in archived.iterdir()) == ["a.jsonl", "copy.jsonl"]
    # the rejected file stays, to be fixed in place
    assert sorted(p.name for p in env.landing.iterdir()) == [".ingested", "broken.parquet"]
    after = _tick(landing_sensor, instance, cursor=first.cursor, landing=LandingResource())
    assert not after.run_requests
    assert [os.path.basename(p) for p in json.loads(after.cursor)] == ["broken.parquet"]
    # content already in the ledger, dropped again: skipped, and archived too
    shutil.copy(archived / "a.jsonl", env.landing / "again.jsonl")
    [request] = _tick(landing_sensor, instance, cursor=after.cursor, landing=LandingResource()).run_requests
    again = execute_request(defs, instance, request, default_job="ingest_job")
    assert (env.landing / ".ingested" / "2025-03-20" / again.run_id / "again.jsonl").exists()
    assert env.sql("SELECT status, count(*) FROM landing_files GROUP BY ALL ORDER BY 1") == [
        ("loaded", 1), ("rejected", 1), ("skipped", 2)]
    assert env.sql("SELECT count(*) FROM events") == [(1,)]


def test_watermark_sensor_requests_counters_for_each_late_batch(env, instance):
    env.drop_jsonl("a.jsonl", [event(ts="2025-03-10T10:00:00Z", quantity="5")])
    catch_up(defs, instance, settle=False)
    env.drop_jsonl("b.jsonl", [event(ts="2025-03-09T10:00:00Z", quantity="3", idempotencyKey="late1")])
    catch_up_runs = catch_up(defs, instance, settle=False).runs
    env.drop_jsonl("c.jsonl", [event(ts="2025-03-09T11:00:00Z", quantity="1", idempotencyKey="late2")])
    later_runs = catch_up(defs, instance, settle=False).runs
    daily = [r for r in catch_up_runs + later_runs if r.job == "daily_usage_job"]
    assert [r.partitions for r in daily] == ["2025-03-09", "2025-03-09"]  # one run per late batch
    keys = {r.tags.get("dagster/run_key") for r in instance.get_runs(
        filters=dg.RunsFilter(job_name="daily_usage_job"))}
    assert len(keys) == 3


def test_watermark_sensor_cursor_skips_what_it_already_requested(env, instance):
    env.drop_jsonl("a.jsonl", [event()])
    [request] = _tick(landing_sensor, instance, landing=LandingResource()).run_requests
    execute_request(defs, instance, request, default_job="ingest_job")
    first = _tick(watermark_sensor, instance)
    assert [r.partition_key for r in first.run_requests] == ["2025-03-10"]
    second = _tick(watermark_sensor, instance, cursor=first.cursor)
    assert not second.run_requests
