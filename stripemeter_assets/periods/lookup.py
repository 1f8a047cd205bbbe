"""Looking billing periods up: which periods a window of days touches, and each
counter's open period (where carry-forwards go)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from stripemeter_assets.settings import midnight, month_start, naive, next_month

CounterId = tuple[str, str, str]  # (tenant, metric, customer_ref)


def calendar_month(ts: datetime) -> tuple[datetime, datetime]:
    start = month_start(ts)
    return start, next_month(start)


# The periods overlapping [$start, $end): of the counters, and of the billing
# periods (a counter that vanished still has its period).
_OVERLAPPING = ("SELECT period_start, period_end FROM period_usage WHERE period_start < $end AND period_end > $start "
                "UNION SELECT period_start, period_end FROM billing_periods "
                "WHERE period_start < $end AND period_end > $start")


def period_starts(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> list[datetime]:
    """Distinct starts of the periods overlapping [start, end)."""
    rows = conn.execute(f"SELECT DISTINCT period_start FROM ({_OVERLAPPING}) ORDER BY 1",
                        {"start": naive(start), "end": naive(end)}).fetchall()
    return [r[0] for r in rows]


def share_a_period(conn: duckdb.DuckDBPyConnection, earlier_end: datetime, later_start: datetime) -> bool:
    """Whether one period overlaps both [.., earlier_end) and [later_start, ..):
    one that starts before the first ends and ends after the second starts."""
    return conn.execute(f"SELECT EXISTS ({_OVERLAPPING})",
                        {"start": naive(later_start), "end": naive(earlier_end)}).fetchone()[0]


def stabbing_days(conn: duckdb.DuckDBPyConnection, first_day: datetime, last_day: datetime) -> list[datetime]:
    """The fewest of the days [first_day, last_day] such that every period
    overlapping those days overlaps one of them. A run over these days meets
    the same periods as a run over all of them (each pre-invoice asset works
    per period start of the periods its days overlap), with fewer day
    partitions, each of which Dagster records for every asset."""
    rows = conn.execute(f"SELECT DISTINCT period_start, period_end FROM ({_OVERLAPPING})",
                        {"start": naive(first_day), "end": naive(last_day) + timedelta(days=1)}).fetchall()
    return stab([(max(midnight(s), first_day), min(midnight(e - timedelta(microseconds=1)), last_day))
                 for s, e in rows])


def stab(intervals: list[tuple[datetime, datetime]]) -> list[datetime]:
    """The fewest points hitting every closed interval (lo, hi): greedily the
    least hi of those not hit yet."""
    points: list[datetime] = []
    for lo, hi in sorted(intervals, key=lambda i: i[1]):
        if not points or lo > points[-1]:
            points.append(hi)
    return points


@dataclass
class PeriodIndex:
    """Every counter's billing periods; counters without any use calendar months."""

    periods: dict[CounterId, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: duckdb.DuckDBPyConnection) -> PeriodIndex:
        index: dict[CounterId, list[tuple[datetime, datetime]]] = {}
        for t, m, c, s, e in conn.execute("SELECT DISTINCT tenant_id, metric, customer_ref, period_start, period_end "
                                          "FROM billing_periods ORDER BY 1, 2, 3, 4").fetchall():
            index.setdefault((t, m, c), []).append((s, e))
        return cls(index)

    def containing(self, counter: CounterId, ts: datetime) -> tuple[datetime, datetime]:
        """The counter's period containing `ts` (its open period when `ts` is now)."""
        ts = naive(ts)
        for start, end in self.periods.get(counter, ()):
            if start <= ts < end:
                return start, end
        return calendar_month(ts)

    def end_of(self, counter: CounterId, period_start: datetime) -> datetime:
        period_start = naive(period_start)
        for start, end in self.periods.get(counter, ()):
            if start == period_start:
                return end
        return calendar_month(period_start)[1]

    def open_starts(self, now: datetime) -> set[datetime]:
        now = naive(now)
        starts = {s for spans in self.periods.values() for s, e in spans if s <= now < e}
        return starts | {calendar_month(now)[0]}
