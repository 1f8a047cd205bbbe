"""The metric catalog from the config, as a TEMP table for SQL to join."""

from datetime import timedelta

import duckdb

from stripemeter_assets.settings import Config

_MICROSECOND = timedelta(microseconds=1)


def load_metric_catalog(conn: duckdb.DuckDBPyConnection, config: Config) -> None:
    """TEMP `metric_catalog(metric, aggregation, allow_negative, lateness_us,
    unit_scale)`; metrics absent from it use the defaults (sum, window L)."""
    conn.execute("""CREATE OR REPLACE TEMP TABLE metric_catalog (
        metric VARCHAR PRIMARY KEY, aggregation VARCHAR NOT NULL, allow_negative BOOLEAN NOT NULL,
        lateness_us BIGINT NOT NULL, unit_scale BIGINT NOT NULL)""")
    if config.metrics:
        conn.executemany(
            "INSERT INTO metric_catalog VALUES (?, ?, ?, ?, ?)",
            [(m.name, m.aggregation, m.allow_negative, int(config.lateness(m.name) / _MICROSECOND), m.unit_scale)
             for m in config.metrics.values()],
        )


def default_lateness_us(config: Config) -> int:
    return int(timedelta(hours=config.lateness_hours) / _MICROSECOND)
