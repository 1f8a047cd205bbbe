"""Partitions: UTC days, for `daily_usage` and for `period_usage` and everything
downstream of it.

Billing periods differ per customer (a subscription anchored on the 15th at
13:42:11 runs 15th to 15th), so no one calendar grid fits them. The simplest
shape that does: a period asset's partition is a UTC day, and materializing
day D recomputes (pushes, reconciles, projects) every customer's period that
overlaps D; a range of days is the union of the periods it touches. UI
backfills and replays keep selecting days, one partition space for the
whole pipeline.
"""

from __future__ import annotations

import dagster as dg

from stripemeter_assets import settings

# Events before this date cannot be counted in any partition (the ingest quarantines them).
PARTITIONS_START = settings.partitions_start()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
period_partitions = daily_partitions
