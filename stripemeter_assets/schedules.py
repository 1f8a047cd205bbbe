"""`pre_invoice_schedule`: runs `pre_invoice_job` (recount the periods, push
the deltas, reconcile meters and invoices with their blocking checks).

The schedule (cron from the YAML config's `pre_invoice_cron`, UTC, default
daily at 06:00) runs the job for today and for the days of periods still inside
their invoice finalization grace period.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.jobs import pre_invoice_job
from stripemeter_assets.partitions import period_partitions


def _cron() -> str:
    try:
        return settings.load_config().pre_invoice_cron
    except Exception:  # an invalid config must not take the code location down
        return settings.DEFAULT_PRE_INVOICE_CRON


def periods_due(now: datetime, grace: timedelta) -> list[datetime]:
    """The UTC days whose periods are due: today's (every open period overlaps it) and the
    days before back to `now − grace`, which the periods still in their invoice grace
    period (closing at period_end + G, `periods.close`) overlap."""
    now = now.astimezone(UTC).replace(tzinfo=None)
    first = (now - grace).replace(hour=0, minute=0, second=0, microsecond=0)
    days = (now.replace(hour=0, minute=0, second=0, microsecond=0) - first).days
    return [first + timedelta(days=i) for i in range(days + 1)]


@dg.schedule(job=pre_invoice_job, cron_schedule=_cron(), execution_timezone="UTC",
             description="Pre-invoice reconciliation of the open (and just closed) billing period.")
def pre_invoice_schedule(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time or settings.now()
    config = settings.load_config()
    # The longest grace of any account: a period still in it must be pushed and reconciled.
    grace = max([config.invoice_grace(None), *(config.invoice_grace(a) for a in config.invoice_grace_by_account)])
    keys = set(period_partitions.get_partition_keys(current_time=now))
    for period in periods_due(now, grace):
        key = period.strftime("%Y-%m-%d")
        if key in keys:
            yield dg.RunRequest(run_key=f"pre_invoice:{key}:{now:%Y%m%dT%H%M}", partition_key=key)
