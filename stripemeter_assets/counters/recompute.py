"""Counter recomputation: daily and period counters as pure functions of the
ledger, the replay that applies late events, and its per-counter diff."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import duckdb

from stripemeter_assets.ledger.catalog import load_metric_catalog
from stripemeter_assets.periods.build import ensure_calendar_periods
from stripemeter_assets.periods.close import load_period_grace
from stripemeter_assets.settings import midnight, naive
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import create_temp_table, load_sql, params_named, query, run_script, transaction


def apply_late_events(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, now: datetime,
                      tenant: str | None = None) -> int:
    """Marks pending late events with ts in [start, end) applied; returns how many."""
    stmt = load_sql("counters/apply_late_events.sql")
    return conn.execute(stmt, params_named(stmt, {"start": naive(start), "end": naive(end), "now": naive(now),
                                                  "tenant": tenant})).fetchone()[0]


def recompute_days(conn: duckdb.DuckDBPyConnection, start: datetime, end: datetime, now: datetime,
                   tenant: str | None = None) -> int:
    """Rewrites daily_usage for [start, end); call inside a transaction."""
    run_script(conn, "counters/macros.sql")
    run_script(conn, "counters/daily_usage.sql", start=naive(start), end=naive(end), now=naive(now), tenant=tenant)
    return conn.execute("SELECT count(*) FROM daily_usage WHERE day >= ?::DATE AND day < ?::DATE",
                        [naive(start), naive(end)]).fetchone()[0]


def load_target_periods(conn: duckdb.DuckDBPyConnection, config: Config, start: datetime, end: datetime,
                        now: datetime, tenant: str | None = None) -> None:
    """TEMP `target_periods`: every billing period overlapping [start, end), with when it
    closes; counters without a Stripe period first get their calendar months."""
    ensure_calendar_periods(conn, start, end, now)
    pairs = conn.execute("SELECT DISTINCT tenant_id, metric FROM billing_periods WHERE period_start < ? "
                         "AND period_end > ? AND (?::VARCHAR IS NULL OR tenant_id = ?)",
                         [naive(end), naive(start), tenant, tenant]).fetchall()
    load_period_grace(conn, config, pairs)
    create_temp_table(conn, "target_periods", "counters/target_periods.sql", start=naive(start), end=naive(end),
                      tenant=tenant, default_grace_us=int(config.invoice_grace(None) / timedelta(microseconds=1)))


def recompute_periods(conn: duckdb.DuckDBPyConnection, config: Config, start: datetime, end: datetime,
                      now: datetime, run_id: str, tenant: str | None = None) -> int:
    """Rewrites period_usage for every billing period overlapping [start, end) (each
    customer's own periods) from daily_usage and the edge days' events, recording changes
    to closed periods; call inside a transaction. Returns how many adjustments were recorded."""
    load_metric_catalog(conn, config)
    load_target_periods(conn, config, start, end, now, tenant)
    run_script(conn, "counters/macros.sql")
    before = conn.execute("SELECT count(*) FROM period_adjustments").fetchone()[0]
    run_script(conn, "counters/period_overflows.sql")
    create_temp_table(conn, "new_period", "counters/period_values.sql")
    run_script(conn, "counters/period_usage.sql", start=naive(start), end=naive(end), now=naive(now),
               policy=config.close_policy, run_id=run_id)
    return conn.execute("SELECT count(*) FROM period_adjustments").fetchone()[0] - before


def overflowing_counters(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Counters the last recomputation on `conn` left out because their sum
    does not fit DECIMAL(38,9), as readable names."""
    names = []
    for table, scope in (("overflowing_days", "day"), ("overflowing_periods", "period")):
        exists = conn.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND temporary",
                              [table]).fetchone()[0]
        if exists:
            cols = "tenant_id, metric, customer_ref" + (", day::VARCHAR" if scope == "day" else "")
            names += [f"{scope} " + "/".join(r) for r in conn.execute(f"SELECT {cols} FROM {table}").fetchall()]
    return names


@dataclass(frozen=True)
class CounterDiff:
    tenant_id: str
    metric: str
    customer_ref: str
    period_start: datetime
    old: Decimal | None
    new: Decimal | None

    @property
    def delta(self) -> Decimal:
        return (self.new or Decimal(0)) - (self.old or Decimal(0))


@dataclass
class ReplayResult:
    diffs: list[CounterDiff]
    late_applied: int
    adjustments: int
    days: list[str]
    periods: list[datetime]
    applied: bool


def replay(conn: duckdb.DuckDBPyConnection, config: Config, start: datetime, end: datetime, *,
           now: datetime, run_id: str, tenant: str | None = None, dry_run: bool = False) -> ReplayResult:
    """Applies pending late events with ts in [start, end) (optionally of one
    tenant), recomputes the days of the range and every billing period they
    touch, and diffs every period counter. A dry run rolls everything back."""
    start, end = naive(start), naive(end)
    day_start = midnight(start)
    day_end = end if end == midnight(end) else midnight(end) + timedelta(days=1)
    with transaction(conn, commit=not dry_run):
        create_temp_table(conn, "replay_before", "counters/replay_counters.sql", start=day_start, end=day_end,
                          tenant=tenant)
        late_applied = apply_late_events(conn, start, end, now, tenant)
        recompute_days(conn, day_start, day_end, now, tenant)
        adjustments = recompute_periods(conn, config, day_start, day_end, now, run_id, tenant)
        rows = query(conn, "counters/replay_diff.sql", start=day_start, end=day_end, tenant=tenant)
        periods = sorted(r["period_start"] for r in query(conn, "counters/target_period_starts.sql"))
        days = [d.strftime("%Y-%m-%d") for d in _days(day_start, day_end)]
    return ReplayResult(diffs=[CounterDiff(**r) for r in rows], late_applied=late_applied, adjustments=adjustments,
                        days=days, periods=periods, applied=not dry_run)


def _days(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(days=i) for i in range((end - start).days)]
