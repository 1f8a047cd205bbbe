"""Where the counters of a TEMP table go in Stripe, as SQL tables: TEMP
`counter_meters` (per (tenant, metric): the meter mapping, account, mode,
unit scale and the account's invoice grace period) and `counter_customers`
(customer_ref -> Stripe customer, mapped refs only).

The meter rules stay in their one home (push.mapping, mode_of,
periods.close.Grace); counter_meters holds their results once per distinct
(tenant, metric), so SQL can join them to every counter instead of Python
asking per counter. Which ref is which customer is decided in SQL
(push/counter_customers.sql), as there are as many refs as counters. A
counter is mapped when its meter has an event name and its ref a Stripe
customer.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pyarrow as pa

from stripemeter_assets.periods.close import Grace
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.settings import Config
from stripemeter_assets.warehouse import ident, render_sql, temp_table_from_rows

_MICROSECOND = timedelta(microseconds=1)
_METERS = pa.schema([
    ("tenant_id", pa.string()), ("metric", pa.string()), ("event_name", pa.string()), ("meter_id", pa.string()),
    ("shadow", pa.bool_()), ("account", pa.string()), ("mode", pa.string()), ("unit_scale", pa.int64()),
    ("grace_us", pa.int64()),
])
_CUSTOMERS = pa.schema([("customer_ref", pa.string()), ("stripe_customer", pa.string())])


def mode_of(shadow: bool, keys: KeyStatus) -> str:
    """A shadow mapping is pushed in test mode only; the others in the primary key's mode."""
    return "test" if shadow else (keys.primary_mode or "live")


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
    configured = [{"customer_ref": ref, "stripe_customer": cus} for ref, cus in (mapping.customers or {}).items()]
    temp_table_from_rows(conn, "configured_customers", configured, _CUSTOMERS)
    conn.execute(render_sql("push/counter_customers.sql", counters=ident(counters)))
