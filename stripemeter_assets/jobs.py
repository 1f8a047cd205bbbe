"""Every job: the ones the sensors and the schedule launch, and the operator's."""

import dagster as dg

from stripemeter_assets.analytics.publish import publish_analytics
from stripemeter_assets.counters.replay import replay_counters
from stripemeter_assets.partitions import daily_partitions, period_partitions

ingest_job = dg.define_asset_job("ingest_job", selection=["usage_events"])
daily_usage_job = dg.define_asset_job("daily_usage_job", selection=["daily_usage"], partitions_def=daily_partitions)
# The projection follows its period counters in the same run.
period_usage_job = dg.define_asset_job("period_usage_job", selection=["period_usage", "cost_projection"],
                                      partitions_def=period_partitions)
# Billing periods are read from Stripe before the period counters use them.
billing_periods_job = dg.define_asset_job("billing_periods_job", selection=["billing_periods"])

# Ingest and `daily_usage` are kept current by the sensors (and `catch-up`),
# so the pre-invoice run counts whatever they have counted. A day partition
# stands for every customer's period overlapping it.
# What settles counted periods: what pre_invoice_job runs after its recount.
SETTLE_ASSETS = ("stripe_push", "reconciliation_report", "invoice_reconciliation")
pre_invoice_job = dg.define_asset_job(
    "pre_invoice_job",
    selection=dg.AssetSelection.assets("period_usage", *SETTLE_ASSETS),
    partitions_def=period_partitions,
    description="Pre-invoice: recount the period, push deltas to Stripe, reconcile (blocking drift check).",
)


@dg.job(description="Apply late events in a range and recompute counters; dry_run reports the diff only.")
def replay_job():
    replay_counters()


@dg.job(description="Publish the read-only analyst snapshot (STRIPEMETER_ANALYTICS).")
def snapshot_job():
    publish_analytics()


# Jobs whose success changes the warehouse, so the analyst snapshot follows them.
WAREHOUSE_JOBS = (ingest_job.name, daily_usage_job.name, period_usage_job.name, replay_job.name,
                  pre_invoice_job.name)
