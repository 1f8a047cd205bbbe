"""Publishing the analyst snapshot after every run that changed the
warehouse, so notebooks read a consistent copy and never block billing."""

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.snapshot import publish_snapshot_from

# Jobs whose success changes the warehouse.
WAREHOUSE_JOBS = ("ingest_job", "daily_usage_job", "period_usage_job", "replay_job",
                  "stripe_push_job", "pre_invoice_job")


@dg.op(pool="duckdb")
def publish_analytics(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    with warehouse.connect() as conn:
        counts = publish_snapshot_from(conn, settings.analytics_path())
    context.add_output_metadata({"path": settings.analytics_path(), **{f"rows.{k}": v for k, v in counts.items()}})


@dg.job(description="Publish the read-only analyst snapshot (STRIPEMETER_ANALYTICS).")
def snapshot_job():
    publish_analytics()


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, request_job=snapshot_job,
                      minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def snapshot_sensor(context: dg.RunStatusSensorContext):
    """One snapshot per successful warehouse run; the run key keeps it once."""
    if context.dagster_run.job_name in WAREHOUSE_JOBS:
        return dg.RunRequest(run_key=f"snapshot-{context.dagster_run.run_id}")
    return dg.SkipReason(f"{context.dagster_run.job_name} does not change the warehouse")
