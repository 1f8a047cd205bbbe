"""Partitions: UTC days for `daily_usage`, billing periods (calendar months,
UTC) for `period_usage` and everything downstream of it."""

from __future__ import annotations

import dagster as dg

from stripemeter_assets import settings

# Events before this date cannot be counted in any partition (the ingest quarantines them).
PARTITIONS_START = settings.partitions_start()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
period_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
