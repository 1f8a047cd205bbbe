"""Planning: which push intents the current counters call for.

The rules (DESIGN §3, §4) are in `sql/push/plan.sql`, applied to every
counter at once. Python gathers what is per mapping, per key status or per
billing period (the counters' Stripe targets, the statuses new intents take,
the open period each carry-forward goes to) and reads back the intents to
send and the tally the push report gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.lookup import PeriodIndex
from stripemeter_assets.push import outbox, targets
from stripemeter_assets.push.outbox import Intent
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.mapping import SUM_AGGREGATIONS
from stripemeter_assets.settings import Config, epoch, naive
from stripemeter_assets.warehouse import create_temp_table, query, run_script, temp_table_from_rows

_CARRY_PERIODS = pa.schema([
    ("tenant_id", pa.string()), ("metric", pa.string()), ("customer_ref", pa.string()),
    ("period_start", pa.timestamp("us")), ("period_end", pa.timestamp("us")),
])


@dataclass(frozen=True)
class Tally:
    """What a plan did, for the push report (TEMP push_plan by action)."""

    planned: int = 0               # intents of a dry run
    refused_shadow: int = 0
    skipped_too_old: int = 0
    carry_forwards: int = 0        # carry_forward intents
    deferred: int = 0              # not pushable yet (period began < 5 min ago, or ts would not grow)
    carry_unmapped: int = 0        # open adjustments of unmapped counters
    carry_not_summable: int = 0    # open adjustments of max/last counters: nothing to carry


def status_of(shadow: bool, keys: KeyStatus, dry_run: bool) -> str:
    """The status a new intent of a shadow (or other) mapping takes."""
    if shadow:
        if not keys.test_present:
            return "refused_shadow"  # never fall back to the live key
        return "planned" if dry_run else "pending"
    return "planned" if dry_run or not keys.primary_present else "pending"


def plan(conn: duckdb.DuckDBPyConnection, *, config: Config, keys: KeyStatus, periods: list[datetime],
         now: datetime, dry_run: bool, run_id: str) -> Tally:
    """Plans the counters of `periods` (those whose row is gone count zero) and the open
    carry-forwards: TEMP push_plan, and new_intents, new_links and settled_adjustments for
    `outbox.write_plan`. Run in the transaction that writes the plan."""
    periods = [naive(p) for p in periods]
    now = naive(now)
    create_temp_table(conn, "push_counters", "push/counters.sql", periods=periods)
    create_temp_table(conn, "push_in_flight", "push/in_flight.sql")
    create_temp_table(conn, "push_open_adjustments", "push/open_adjustments.sql")
    gone = outbox.vanished(conn, "push_counters", periods)
    carried = conn.execute("SELECT DISTINCT tenant_id, metric, customer_ref FROM push_open_adjustments").fetchall()
    index = PeriodIndex.load(conn) if gone or carried else PeriodIndex()
    outbox.add_vanished(conn, config, index, "push_counters", gone)
    # Each is carried into its counter's open period: its subscription's, else the calendar month.
    temp_table_from_rows(conn, "carry_periods", [
        dict(zip(_CARRY_PERIODS.names, (tenant, metric, ref, *index.containing((tenant, metric, ref), now))))
        for tenant, metric, ref in carried], _CARRY_PERIODS)
    conn.execute("CREATE OR REPLACE TEMP VIEW push_keys AS SELECT tenant_id, metric, customer_ref FROM push_counters "
                 "UNION ALL SELECT tenant_id, metric, customer_ref FROM push_open_adjustments")
    targets.load(conn, config, keys, "push_keys")
    run_script(conn, "periods/macros.sql")
    run_script(conn, "push/plan.sql", now=now, now_s=epoch(now), sum_aggregations=list(SUM_AGGREGATIONS),
               shadow_status=status_of(True, keys, dry_run), primary_status=status_of(False, keys, dry_run),
               run_id=run_id)
    [tally] = query(conn, "push/plan_tally.sql")
    return Tally(**tally)


def new_pending(conn: duckdb.DuckDBPyConnection) -> list[Intent]:
    """The plan's intents to send, in the order they were planned."""
    cur = conn.execute("SELECT * EXCLUDE (run_id) FROM new_intents WHERE status = 'pending' "
                       "ORDER BY period_start, tenant_id, metric, customer_ref, revision")
    cols = [d[0] for d in cur.description]
    return [Intent(**dict(zip(cols, r))) for r in cur.fetchall()]


def plan_rows(conn: duckdb.DuckDBPyConnection, action: str, examples: int) -> tuple[int, list[tuple[str, str, str]]]:
    """How many counters of TEMP push_plan the plan gave `action` (unmapped, too_large), and
    the first `examples` of them."""
    [row] = query(conn, "push/plan_rows.sql", action=action, examples=examples)
    return row["counters"], [tuple(e) for e in row["examples"] or []]
