"""The DuckDB warehouse as a Dagster resource."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import dagster as dg
import duckdb

from stripemeter_assets import settings, warehouse


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse DuckDB file (`STRIPEMETER_WAREHOUSE`) and its memory cap."""

    path: str = ""
    memory_limit: str = warehouse.DEFAULT_MEMORY_LIMIT
    config_path: str = ""

    def resolved_path(self) -> str:
        return self.path or settings.warehouse_path()

    @contextlib.contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.resolved_path(), memory_limit=self.memory_limit) as conn:
            yield conn

    def config(self) -> settings.Config:
        return settings.load_config(self.config_path or None)
