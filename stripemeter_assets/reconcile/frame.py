"""The period's reconciliation rows before Stripe is read, built set-based in
DuckDB (`sql/reconcile/frame.sql` -> TEMP `recon_frame`).

Python holds only what is per (tenant, metric) or per customer ref — the
config's mapping rules, the account's grace period, whether a key can read
the meter's mode — and each rule stays in its one home (push.mapping,
push.planner, periods.close, reconcile.stripe_totals). Rows that need no
Stripe read (unmapped, or no key for their mode) get their status in SQL and
never become Python objects; the others come back as `compare.Row`s.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.close import Grace
from stripemeter_assets.periods.lookup import PeriodIndex
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.mapping import SUM_AGGREGATIONS
from stripemeter_assets.push.planner import CounterKey, mode_of, vanished_counter
from stripemeter_assets.reconcile import compare
from stripemeter_assets.reconcile.compare import Row
from stripemeter_assets.reconcile.stripe_totals import StripeTotals
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import create_temp_table, run_script, temp_table_from_rows

_MICROSECOND = timedelta(microseconds=1)
_METERS = pa.schema([
    ("tenant_id", pa.string()), ("metric", pa.string()), ("event_name", pa.string()), ("meter_id", pa.string()),
    ("shadow", pa.bool_()), ("account", pa.string()), ("mode", pa.string()), ("unit_scale", pa.int64()),
    ("grace_us", pa.int64()), ("no_read", pa.string()),
])
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
    _load_meters(conn, config, keys)
    mapping = config.stripe
    refs = [r for (r,) in conn.execute("SELECT DISTINCT customer_ref FROM recon_counters").fetchall()]
    customers = [mapping.customer_for(r) for r in refs]
    conn.register("_recon_customers", pa.table({"customer_ref": pa.array(refs, pa.string()),
                                                "stripe_customer": pa.array(customers, pa.string())}))
    try:
        conn.execute("CREATE OR REPLACE TEMP TABLE recon_customers AS SELECT * FROM _recon_customers "
                     "WHERE stripe_customer IS NOT NULL")
    finally:
        conn.unregister("_recon_customers")
    run_script(conn, "periods/macros.sql")
    run_script(conn, "reconcile/frame.sql", period_start=period, now=naive(now),
               sum_aggregations=list(SUM_AGGREGATIONS), not_in_stripe=list(compare.NOT_IN_STRIPE),
               unmapped_meter=compare.unmapped_cause("meter"), unmapped_customer=compare.unmapped_cause("customer"),
               summary_failed=compare.summary_error_cause(""))


def _add_vanished(conn: duckdb.DuckDBPyConnection, config: Config, period: datetime) -> None:
    gone = conn.execute(
        "SELECT DISTINCT s.account, s.mode, s.tenant_id, s.customer_ref, s.metric, s.period_start "
        "FROM stripe_push_state s WHERE s.period_start = ? AND NOT EXISTS (SELECT 1 FROM recon_counters c "
        "WHERE c.tenant_id = s.tenant_id AND c.metric = s.metric AND c.customer_ref = s.customer_ref)",
        [period]).fetchall()
    if not gone:
        return
    index = PeriodIndex.load(conn)
    counters = {vanished_counter(CounterKey(*key), index, config) for key in gone}
    conn.executemany("INSERT INTO recon_counters BY NAME SELECT ? AS tenant_id, ? AS metric, ? AS customer_ref, "
                     "? AS period_start, ? AS period_end, ? AS aggregation, ? AS value, ? AS since_close",
                     [[c.tenant_id, c.metric, c.customer_ref, c.period_start, c.period_end, c.aggregation, c.value,
                       c.since_close] for c in counters])


def _load_meters(conn: duckdb.DuckDBPyConnection, config: Config, keys: KeyStatus) -> None:
    mapping, grace = config.stripe, Grace(config)
    rows = []
    for tenant, metric in conn.execute("SELECT DISTINCT tenant_id, metric FROM recon_counters").fetchall():
        meter = mapping.meter_for(tenant, metric)
        row = {"tenant_id": tenant, "metric": metric, "unit_scale": config.metric(metric).unit_scale,
               "grace_us": grace.of(tenant, metric) // _MICROSECOND}
        if meter is not None:
            mode = mode_of(meter.shadow, keys)
            row.update(event_name=meter.event_name, meter_id=meter.meter_id, shadow=meter.shadow,
                       account=mapping.account_for(tenant, meter), mode=mode,
                       no_read=StripeTotals.unavailable(mode, meter.shadow))
        rows.append(row)
    temp_table_from_rows(conn, "recon_meters", rows, _METERS)


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
