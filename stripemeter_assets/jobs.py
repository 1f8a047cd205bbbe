"""Jobs the sensors, schedule and CLI launch."""

import dagster as dg

from stripemeter_assets.partitions import daily_partitions, period_partitions

ingest_job = dg.define_asset_job("ingest_job", selection=["usage_events"])
daily_usage_job = dg.define_asset_job("daily_usage_job", selection=["daily_usage"], partitions_def=daily_partitions)
# The projection follows its period counters in the same run.
period_usage_job = dg.define_asset_job("period_usage_job", selection=["period_usage", "cost_projection"],
                                      partitions_def=period_partitions)
# Billing periods are read from Stripe before the period counters use them.
billing_periods_job = dg.define_asset_job("billing_periods_job", selection=["billing_periods"])
