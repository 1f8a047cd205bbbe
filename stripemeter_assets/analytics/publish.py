"""The op that publishes the analyst snapshot; `snapshot_job` runs it after
every run that changed the warehouse (`snapshot_sensor`)."""

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.analytics.snapshot import publish_snapshot_from


@dg.op(pool="duckdb")
def publish_analytics(context: dg.OpExecutionContext, warehouse: WarehouseResource) -> None:
    with warehouse.connect() as conn:
        counts = publish_snapshot_from(conn, settings.analytics_path())
    context.add_output_metadata({"path": settings.analytics_path(), **{f"rows.{k}": v for k, v in counts.items()}})
