"""`pre_invoice_schedule`: runs `pre_invoice_job` (recount the period,
push the deltas, reconcile with the blocking drift check).

The schedule (cron from the YAML config's `pre_invoice_cron`, UTC, default
daily at 06:00) runs the job for the open period and, while the previous
period is still inside the lateness window, for that one too.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.settings import next_month
from stripemeter_assets.jobs import pre_invoice_job
from stripemeter_assets.partitions import period_partitions


def _cron() -> str:
    try:
        return settings.load_config().pre_invoice_cron
    except Exception:  # an invalid config must not take the code location down
        return settings.DEFAULT_PRE_INVOICE_CRON


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
