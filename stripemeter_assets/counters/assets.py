"""`daily_usage` and `period_usage`: counters recomputed per partition."""

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.counters.recompute import (
    apply_late_events,
    overflowing_counters,
    recompute_days,
    recompute_periods,
)
from stripemeter_assets.partitions import daily_partitions, period_partitions
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.warehouse import transaction

# Runs the watermark sensor launches carry this tag; any other run of
# daily_usage (a UI backfill) also applies the window's pending late events.
TRIGGER_TAG = "stripemeter/trigger"
SENSOR_TRIGGER = "watermark_sensor"


def _fail_on_overflow(overflowing: list[str]) -> None:
    """Everyone else's counters are committed by now; these need an operator."""
    if overflowing:
        raise dg.Failure(
            description=f"{len(overflowing)} counters exceed DECIMAL(38,9) and were left out: {overflowing[:10]}",
            metadata={"overflowing_counters": dg.MetadataValue.json(overflowing)},
        )


@dg.asset(
    deps=["usage_events"],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="counters",
    kinds={"duckdb"},
    description="Per (tenant, metric, customer, UTC day): sum, count, max, last and the greatest ts.",
)
def daily_usage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    now = settings.now()
    applied = 0
    with warehouse.connect() as conn, transaction(conn):
        if context.run.tags.get(TRIGGER_TAG) != SENSOR_TRIGGER:
            applied = apply_late_events(conn, window.start, window.end, now)
        rows = recompute_days(conn, window.start, window.end, now)
        pending = conn.execute("SELECT count(*) FROM late_events WHERE status = 'pending'").fetchone()[0]
        overflowing = overflowing_counters(conn)
    _fail_on_overflow(overflowing)
    return dg.MaterializeResult(metadata={
        "window": f"{window.start:%Y-%m-%d}..{window.end:%Y-%m-%d}",
        "counter_rows": rows,
        "late_events_applied": applied,
        "late_events_pending": pending,
    })


@dg.asset(
    deps=[dg.AssetDep("daily_usage", partition_mapping=dg.TimeWindowPartitionMapping()), "billing_periods"],
    partitions_def=period_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="counters",
    kinds={"duckdb"},
    description="Per (tenant, metric, customer, billing period from `billing_periods`, exact to the second): "
                "the metric's aggregation as `value`, event_count and watermark. A day partition recomputes every "
                "period overlapping that day. Changes to closed periods (past period_end + the invoice grace "
                "period) go to `period_adjustments`.",
)
def period_usage(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    now = settings.now()
    config = warehouse.config()
    adjustments = 0
    with warehouse.connect() as conn, transaction(conn):
        adjustments += recompute_periods(conn, config, window.start, window.end, now, context.run_id)
        overflowing = overflowing_counters(conn)
        counters, total_events, periods = conn.execute(
            "SELECT count(*), coalesce(sum(event_count), 0), count(DISTINCT (period_start, period_end)) "
            "FROM period_usage WHERE period_start < ? AND period_end > ?",
            [window.end.replace(tzinfo=None), window.start.replace(tzinfo=None)]).fetchone()
    _fail_on_overflow(overflowing)
    return dg.MaterializeResult(metadata={
        "counters": counters,
        "distinct_periods": periods,
        "events_counted": int(total_events),
        "closed_period_adjustments": adjustments,
    })
