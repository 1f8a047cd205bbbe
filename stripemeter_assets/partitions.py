"""Partitions: UTC days for `daily_usage`, billing periods (calendar months,
UTC) for `period_usage` and everything downstream of it."""

from __future__ import annotations

import os

import dagster as dg

# Events before this date cannot be counted in any partition.
PARTITIONS_START = os.environ.get("STRIPEMETER_PARTITIONS_START", "2024-01-01")

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
period_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
