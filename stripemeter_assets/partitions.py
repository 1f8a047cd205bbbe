"""Partitions: UTC days for `daily_usage`, billing periods (calendar months,
UTC) for `period_usage` and everything downstream of it; and the time
helpers every stage uses for days and periods."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from stripemeter_assets import settings

# Events before this date cannot be counted in any partition (the ingest quarantines them).
PARTITIONS_START = settings.partitions_start()

daily_partitions = dg.DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)
period_partitions = dg.MonthlyPartitionsDefinition(start_date=PARTITIONS_START, timezone="UTC", end_offset=1)


# Time arithmetic of days and periods. The warehouse's TIMESTAMP columns hold
# UTC wall time without tzinfo; Stripe takes epoch seconds.

def utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC) or an ISO text (`Z` or an offset)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive(ts: datetime) -> datetime:
    """UTC wall time without tzinfo, as the warehouse holds it."""
    return utc(ts).replace(tzinfo=None)


def epoch(ts: datetime) -> int:
    return int(utc(ts).timestamp())


def midnight(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(ts: datetime) -> datetime:
    return midnight(naive(ts)).replace(day=1)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """Starts of the calendar months overlapping [start, end)."""
    first = midnight(start).replace(day=1)
    months = []
    while first < end:
        months.append(first)
        first = next_month(first)
    return months
