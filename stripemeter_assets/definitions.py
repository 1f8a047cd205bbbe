"""The Dagster code location: `stripemeter_assets.definitions.defs`."""

import dagster as dg

from stripemeter_assets.counters.assets import daily_usage, period_usage
from stripemeter_assets.invoices.assets import invoice_money_at_stake_within_tolerance, invoice_reconciliation
from stripemeter_assets.jobs import (billing_periods_job, daily_usage_job, ingest_job, period_usage_job,
                                     pre_invoice_job, replay_job, snapshot_job)
from stripemeter_assets.ledger.assets import usage_events
from stripemeter_assets.periods.assets import billing_periods
from stripemeter_assets.projection.assets import cost_projection
from stripemeter_assets.push.assets import stripe_push
from stripemeter_assets.reconcile.assets import reconciliation_report, reconciliation_within_epsilon
from stripemeter_assets.resources import LandingResource, StripeResource, WarehouseResource
from stripemeter_assets.schedules import pre_invoice_schedule
from stripemeter_assets.sensors import landing_sensor, snapshot_sensor, watermark_sensor

defs = dg.Definitions(
    assets=[usage_events, daily_usage, billing_periods, period_usage, cost_projection, stripe_push,
            reconciliation_report, invoice_reconciliation],
    asset_checks=[reconciliation_within_epsilon, invoice_money_at_stake_within_tolerance],
    jobs=[ingest_job, daily_usage_job, billing_periods_job, period_usage_job, replay_job, snapshot_job,
          pre_invoice_job],
    schedules=[pre_invoice_schedule],
    sensors=[landing_sensor, watermark_sensor, snapshot_sensor],
    resources={
        "warehouse": WarehouseResource(),
        "landing": LandingResource(),
        "stripe": StripeResource(),
    },
    executor=dg.in_process_executor,
)
