"""The period's reconciliation rows before Stripe is read, built set-based in
DuckDB (`sql/reconcile/frame.sql` -> TEMP `recon_frame`).

Python holds only what is per (tenant, metric), per customer ref or per mode
— the counters' Stripe targets (`push.targets`), whether a key can read the
mode (`reconcile.stripe_totals`) — and each rule stays in its one home. Rows that need no
Stripe read (unmapped, or no key for their mode) get their status in SQL and
never become Python objects; the others come back as `compare.Row`s.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.lookup import PeriodIndex
from stripemeter_assets.push import outbox, targets
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.mapping import SUM_AGGREGATIONS
from stripemeter_assets.reconcile import compare
from stripemeter_assets.reconcile.compare import Row
from stripemeter_assets.reconcile.stripe_totals import StripeTotals
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import create_temp_table, run_script, temp_table_from_rows

_READS = pa.schema([("mode", pa.string()), ("shadow", pa.bool_()), ("no_read", pa.string())])
_ROW_FIELDS = ("tenant_id", "customer_ref", "metric", "period_start", "period_end", "unit_scale", "local_value",
               "local_total", "stripe_customer", "event_name", "account", "mode", "shadow", "meter_id",
               "meter_formula", "pushed_total", "pending_intents", "last_acked_at", "latest_status",
               "failed_error", "rejected_error", "verifying", "too_old", "late_pending")


def build(conn: duckdb.DuckDBPyConnection, config: Config, keys: KeyStatus, period: datetime,
          now: datetime) -> None:
    """TEMP `recon_frame`: one row per counter of the period (and per pushed counter whose row is gone)."""
    period = naive(period)
    create_temp_table(conn, "recon_counters", "push/counters.sql", periods=[period])
    _add_vanished(conn, config, period)
    targets.load(conn, config, keys, "recon_counters")
    reads = [{"mode": mode, "shadow": shadow, "no_read": StripeTotals.unavailable(mode, shadow)}
             for mode, shadow in conn.execute("SELECT DISTINCT mode, shadow FROM counter_meters "
                                              "WHERE event_name IS NOT NULL").fetchall()]
    temp_table_from_rows(conn, "recon_reads", reads, _READS)
    run_script(conn, "periods/macros.sql")
    run_script(conn, "reconcile/frame.sql", period_start=period, now=naive(now),
               sum_aggregations=list(SUM_AGGREGATIONS), not_in_stripe=list(compare.NOT_IN_STRIPE),
               unmapped_meter=compare.unmapped_cause("meter"), unmapped_customer=compare.unmapped_cause("customer"),
               summary_failed=compare.summary_error_cause(""))


def _add_vanished(conn: duckdb.DuckDBPyConnection, config: Config, period: datetime) -> None:
    gone = outbox.vanished(conn, "recon_counters", [period])
    if gone:
        outbox.add_vanished(conn, config, PeriodIndex.load(conn), "recon_counters", gone)


def too_large(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The mapped counters the frame left out because their total in Stripe's
    units does not fit a reconciliation row (frame.sql), as tenant/customer/metric period."""
    return [f"{t}/{c}/{m} {p:%Y-%m-%d} ({v.normalize():f} x {scale})" for t, c, m, p, v, scale in conn.execute(
        "SELECT tenant_id, customer_ref, metric, period_start, local_value, unit_scale FROM recon_too_large "
        "ORDER BY tenant_id, customer_ref, metric").fetchall()]


def rows_to_read(conn: duckdb.DuckDBPyConnection) -> list[Row]:
    """The frame's rows Stripe is asked about, as Rows."""
    cur = conn.execute(f"SELECT {', '.join(_ROW_FIELDS)} FROM recon_frame WHERE status IS NULL "
                       "ORDER BY tenant_id, customer_ref, metric")
    out = []
    for values in cur.fetchall():
        r = dict(zip(_ROW_FIELDS, values))
        r["local_total"], r["local_value"] = int(r["local_total"]), Decimal(r["local_value"])
        out.append(Row(**r))
    return out
