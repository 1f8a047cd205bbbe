"""The Dagster code location: `stripemeter_assets.definitions.defs`."""

import dagster as dg

from stripemeter_assets.assets.counters import daily_usage, period_usage
from stripemeter_assets.assets.ingest import usage_events
from stripemeter_assets.assets.projection import cost_projection
from stripemeter_assets.jobs import daily_usage_job, ingest_job, period_usage_job
from stripemeter_assets.replay_job import replay_job
from stripemeter_assets.resources import LandingResource, WarehouseResource
from stripemeter_assets.sensors import landing_sensor, watermark_sensor
from stripemeter_assets.snapshot_job import snapshot_job, snapshot_sensor

defs = dg.Definitions(
    assets=[usage_events, daily_usage, period_usage, cost_projection],
    jobs=[ingest_job, daily_usage_job, period_usage_job, replay_job, snapshot_job],
    sensors=[landing_sensor, watermark_sensor, snapshot_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingResource(),
    },
    executor=dg.in_process_executor,
)
