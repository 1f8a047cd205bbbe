"""Every sensor: new landing files -> ingest runs; new or late data -> counter
runs; a successful warehouse run -> a fresh analyst snapshot."""

import hashlib
import json
from datetime import date

import dagster as dg

from stripemeter_assets.counters.assets import SENSOR_TRIGGER, TRIGGER_TAG
from stripemeter_assets.jobs import WAREHOUSE_JOBS, daily_usage_job, ingest_job, period_usage_job, snapshot_job
from stripemeter_assets.partitions import PARTITIONS_START
from stripemeter_assets.resources import LandingResource

MAX_FILES_PER_RUN = 500


def _batch_key(versions: dict[str, str]) -> str:
    material = json.dumps(sorted(versions.items()))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


@dg.sensor(job=ingest_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource) -> dg.SensorResult:
    """Requests one ingest run per batch of new or changed ready files.

    The cursor maps each file path to the version already requested (mtime,
    size and, for objects, the ETag), so equal mtimes or odd name orders never
    hide a file, and a file rewritten in place is requested again (its content
    hash decides at ingest whether anything is new)."""
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    ready = landing.ready_files()
    new = [f for f in ready if seen.get(f.path) != f.version]
    runs = []
    for start in range(0, len(new), MAX_FILES_PER_RUN):
        chunk = new[start:start + MAX_FILES_PER_RUN]
        versions = {f.path: f.version for f in chunk}
        runs.append(dg.RunRequest(
            run_key=f"ingest-{_batch_key(versions)}",
            run_config={"ops": {"usage_events": {"config": {"files": [f.path for f in chunk]}}}},
            tags={"stripemeter/batch": _batch_key(versions), "stripemeter/files": str(len(chunk))},
        ))
    # Forget files that left the landing area, so the cursor stays small.
    cursor = {f.path: f.version for f in ready}
    if not runs:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new landing files"), cursor=json.dumps(cursor))
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor))


RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Touched days closer than this are recomputed in one run.
MAX_DAY_GAP = 3


def _day_ranges(days: list[str]) -> list[tuple[str, str]]:
    ordered = sorted({date.fromisoformat(d) for d in days})
    ranges: list[list[date]] = []
    for day in ordered:
        if ranges and (day - ranges[-1][1]).days <= MAX_DAY_GAP:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    return [(a.isoformat(), b.isoformat()) for a, b in ranges]


def partition_request(job_name: str, run_key: str | None, first: str, last: str, tags: dict) -> dg.RunRequest:
    """One run over the day partitions [first, last]: a single key, or a range (single-run backfill)."""
    if first == last:
        return dg.RunRequest(job_name=job_name, run_key=run_key, partition_key=first, tags=tags)
    return dg.RunRequest(job_name=job_name, run_key=run_key, tags={**tags, RANGE_START: first, RANGE_END: last})


@dg.sensor(jobs=[daily_usage_job, period_usage_job], minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def watermark_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    """Keeps counters current from the Dagster event log alone (it never
    opens the warehouse, so it never waits on its lock):
    1. each `usage_events` batch names the days it changed (new events and
       late ones inside the window) -> one `daily_usage` run per range;
    2. each `daily_usage` materialization -> a `period_usage` run for the
       same days (each recomputes every billing period overlapping them).
    Run keys carry the event's storage id, so a second late batch for the
    same day triggers a second run."""
    cursor = json.loads(context.cursor) if context.cursor else {"usage_events": 0, "daily_usage": 0}
    instance = context.instance
    tags = {TRIGGER_TAG: SENSOR_TRIGGER}

    batches = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("usage_events"), after_storage_id=cursor["usage_events"]),
        limit=1000, ascending=True).records
    days = []
    for record in batches:
        touched = record.asset_materialization.metadata.get("days_touched")
        days.extend(touched.value if touched else [])
        cursor["usage_events"] = max(cursor["usage_events"], record.storage_id)
    # Days before the first partition (an event dated 2019, or year 1) stay
    # in the ledger but have no counter partition to run.
    outside = sorted({d for d in days if d < PARTITIONS_START})
    if outside:
        context.log.warning(f"{len(outside)} touched days precede the partitions ({PARTITIONS_START}): {outside[:5]}")
    runs = [
        partition_request(daily_usage_job.name, f"daily-{cursor['usage_events']}-{first}-{last}", first, last, tags)
        for first, last in _day_ranges([d for d in days if d >= PARTITIONS_START])
    ]

    dailies = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("daily_usage"), after_storage_id=cursor["daily_usage"]),
        limit=10000, ascending=True).records
    changed = set()
    for record in dailies:
        if record.partition_key:
            changed.add(record.partition_key)
        cursor["daily_usage"] = max(cursor["daily_usage"], record.storage_id)
    runs += [
        partition_request(period_usage_job.name, f"period-{cursor['daily_usage']}-{first}-{last}", first, last, tags)
        for first, last in _day_ranges(sorted(changed))
    ]
    if not runs:
        return dg.SensorResult(skip_reason=dg.SkipReason("no new batches or counter changes"), cursor=json.dumps(cursor))
    return dg.SensorResult(run_requests=runs, cursor=json.dumps(cursor))


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=snapshot_job,
                      minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def snapshot_sensor(context: dg.RunStatusSensorContext):
    """One snapshot per successful warehouse run; the run key keeps it once."""
    if context.dagster_run.job_name in WAREHOUSE_JOBS:
        return dg.RunRequest(run_key=f"snapshot-{context.dagster_run.run_id}")
    return dg.SkipReason(f"{context.dagster_run.job_name} does not change the warehouse")
