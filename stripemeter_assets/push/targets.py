"""Where the counters of a TEMP table go in Stripe, as SQL tables: TEMP
`counter_meters` (per (tenant, metric): the meter mapping, account, mode,
unit scale and the account's invoice grace period) and `counter_customers`
(customer_ref -> Stripe customer, mapped refs only).

The rules stay in their one home (push.mapping, push.planner.mode_of,
periods.close.Grace); these tables hold their results once per distinct
key, so SQL can join them to every counter instead of Python asking per
counter. A counter is mapped when its meter has an event name and its ref a
Stripe customer.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.close import Grace
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.planner import mode_of
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import ident, temp_table_from_rows

_MICROSECOND = timedelta(microseconds=1)
_METERS = pa.schema([
    ("tenant_id", pa.string()), ("metric", pa.string()), ("event_name", pa.string()), ("meter_id", pa.string()),
    ("shadow", pa.bool_()), ("account", pa.string()), ("mode", pa.string()), ("unit_scale", pa.int64()),
    ("grace_us", pa.int64()),
])


def load(conn: duckdb.DuckDBPyConnection, config: Config, keys: KeyStatus, counters: str) -> None:
    """TEMP counter_meters and counter_customers for the counters of TEMP table `counters`."""
    mapping, grace = config.stripe, Grace(config)
    meters = []
    for tenant, metric in conn.execute(f"SELECT DISTINCT tenant_id, metric FROM {ident(counters)}").fetchall():
        meter = mapping.meter_for(tenant, metric)
        row = {"tenant_id": tenant, "metric": metric, "unit_scale": config.metric(metric).unit_scale,
               "grace_us": grace.of(tenant, metric) // _MICROSECOND}
        if meter is not None:
            row.update(event_name=meter.event_name, meter_id=meter.meter_id, shadow=meter.shadow,
                       account=mapping.account_for(tenant, meter), mode=mode_of(meter.shadow, keys))
        meters.append(row)
    temp_table_from_rows(conn, "counter_meters", meters, _METERS)
    refs = [r for (r,) in conn.execute(f"SELECT DISTINCT customer_ref FROM {ident(counters)}").fetchall()]
    customers = pa.table({"customer_ref": pa.array(refs, pa.string()),
                          "stripe_customer": pa.array([mapping.customer_for(r) for r in refs], pa.string())})
    conn.register("_counter_customers", customers)
    try:
        conn.execute("CREATE OR REPLACE TEMP TABLE counter_customers AS SELECT * FROM _counter_customers "
                     "WHERE stripe_customer IS NOT NULL")
    finally:
        conn.unregister("_counter_customers")
