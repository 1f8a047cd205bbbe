"""`pre_invoice_schedule`: runs `pre_invoice_job` (recount the periods, push
the deltas, reconcile meters and invoices with their blocking checks).

The schedule (cron from the YAML config's `pre_invoice_cron`, UTC, default
daily at 06:00) runs the job once over today and the days of periods still
inside their invoice finalization grace period.
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.jobs import pre_invoice_job
from stripemeter_assets.partitions import period_partitions
from stripemeter_assets.sensors import partition_request


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
    due = [key for key in (day.strftime("%Y-%m-%d") for day in periods_due(now, grace)) if key in keys]
    if due:
        # One run over the due days: a period overlapping several of them (an open period
        # anchored mid-month, with a grace of hours to days) is pushed and reconciled once,
        # not once per day with a Stripe summary read per mapped counter each time.
        span = due[0] if len(due) == 1 else f"{due[0]}..{due[-1]}"
        yield partition_request(pre_invoice_job.name, f"pre_invoice:{span}:{now:%Y%m%dT%H%M}", due[0], due[-1], {})
