"""`stripe_push`: the delta push of period counters to Stripe Billing Meters."""

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.partitions import period_partitions
from stripemeter_assets.periods.lookup import period_starts
from stripemeter_assets.push.client import scrub
from stripemeter_assets.push.run import run_push
from stripemeter_assets.resources import StripeResource, WarehouseResource


class PushFailed(RuntimeError):
    """stripe_push stopped on an unexpected error; the message is scrubbed."""


@dg.asset(
    deps=["period_usage"],
    partitions_def=period_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb",
    group_name="stripe",
    kinds={"stripe", "duckdb"},
    description="Pushes each period counter's change since the last acknowledged push to its Stripe meter "
                "(sum/count: signed delta; max/last: the new value), and closed periods' changes as "
                "carry-forwards into the open period, exactly once through the `stripe_pushes` outbox.",
)
def stripe_push(context: dg.AssetExecutionContext, warehouse: WarehouseResource,
                stripe: StripeResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    gateways = stripe.gateways()
    try:
        with warehouse.connect() as conn:
            periods = period_starts(conn, window.start, window.end)
            report = run_push(conn, config=warehouse.config(), periods=periods, now=settings.now(),
                              run_id=context.run_id, gateways=gateways, keys=stripe.key_status(),
                              options=stripe.push_options(), log=context.log)
    except Exception as exc:
        # Whatever went wrong, its message is scrubbed of key material (the
        # traceback keeps only code locations, never values).
        raise PushFailed(scrub(f"{type(exc).__name__}: {exc}")).with_traceback(exc.__traceback__) from None
    metadata = {"period_starts": len(periods), **report.metadata()}
    if report.incomplete:
        # Everything is recorded: pending intents go again, same identifiers, next run.
        raise dg.Failure(description=scrub(f"stripe_push incomplete: {report.summary()}"), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)
