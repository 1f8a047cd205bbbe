"""`pre_invoice_job` and `pre_invoice_schedule`.

The job is an asset job over the billing-period assets, in dependency order:
`period_usage` (recount the period from `daily_usage`) → `stripe_push`
(push the deltas) → `reconciliation_report` and its blocking check
`reconciliation_within_epsilon`. Ingest (`usage_events`, unpartitioned) and
`daily_usage` (daily partitions) cannot share a job with monthly partitions;
they are kept current by `landing_sensor` and `watermark_sensor` (and by the
`catch-up` command), so the job picks up whatever they have counted.

The schedule (cron from the YAML config's `pre_invoice_cron`, UTC, default
daily at 06:00) runs the job for the open period and, while the previous
period is still inside the lateness window, for that one too.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.counters import next_month
from stripemeter_assets.partitions import period_partitions

DEFAULT_CRON = "0 6 * * *"

pre_invoice_job = dg.define_asset_job(
    "pre_invoice_job",
    selection=dg.AssetSelection.assets("period_usage", "stripe_push", "reconciliation_report"),
    partitions_def=period_partitions,
    description="Pre-invoice: recount the period, push deltas to Stripe, reconcile (blocking drift check).",
)


def _cron() -> str:
    try:
        return str(settings.load_config().raw.get("pre_invoice_cron") or DEFAULT_CRON)
    except Exception:  # an invalid config must not take the code location down
        return DEFAULT_CRON


def periods_due(now: datetime, lateness: timedelta) -> list[datetime]:
    """The open period, and the previous one while now < its end + lateness."""
    current = now.astimezone(UTC).replace(tzinfo=None, day=1, hour=0, minute=0, second=0, microsecond=0)
    previous = (current - timedelta(days=1)).replace(day=1)
    due = [current]
    if now.astimezone(UTC).replace(tzinfo=None) < next_month(previous) + lateness:
        due.insert(0, previous)
    return due


@dg.schedule(job=pre_invoice_job, cron_schedule=_cron(), execution_timezone="UTC",
             description="Pre-invoice reconciliation of the open (and just closed) billing period.")
def pre_invoice_schedule(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time or settings.now()
    lateness = timedelta(hours=settings.load_config().lateness_hours)
    keys = set(period_partitions.get_partition_keys(current_time=now))
    for period in periods_due(now, lateness):
        key = period.strftime("%Y-%m-%d")
        if key in keys:
            yield dg.RunRequest(run_key=f"pre_invoice:{key}:{now:%Y%m%dT%H%M}", partition_key=key)
