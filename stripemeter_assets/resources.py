"""Dagster resources: the DuckDB warehouse, the landing area and Stripe."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

import dagster as dg
import duckdb

from stripemeter_assets import settings, warehouse
from stripemeter_assets.ledger.landing import LandingFile, list_ready_files
from stripemeter_assets.push.client import GatewayFactory, KeyStatus
from stripemeter_assets.push.pacing import RetryPolicy
from stripemeter_assets.push.run import PushOptions


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


class LandingResource(dg.ConfigurableResource):
    """Where producers drop files: a folder or an fsspec URL (`STRIPEMETER_LANDING`)."""

    url: str = ""
    settle_seconds: float | None = None

    def resolved_url(self) -> str:
        return self.url or settings.landing_url()

    def ready_files(self) -> list[LandingFile]:
        return list_ready_files(self.resolved_url(), settle=self.settle_seconds)


class StripeResource(dg.ConfigurableResource):
    """The Stripe API (real, or the emulator through `STRIPE_API_BASE`).

    Keys are never config: they are read from the environment when a call
    needs them. `dry_run` records intents as `planned` and sends nothing, as
    does a missing `STRIPE_API_KEY`. `pacing` keeps calls under
    `rate_fraction` of Stripe's documented limits for the key's mode.
    """

    api_base: str = ""
    dry_run: bool = False
    pacing: bool = True
    rate_fraction: float = 0.8
    max_attempts: int = 6
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    timeout_seconds: float = 30.0
    max_workers: int = 4
    reconcile_after_hours: float = 23.0

    def resolved_api_base(self) -> str | None:
        return self.api_base or settings.stripe_api_base()

    def key_status(self) -> KeyStatus:
        return KeyStatus.from_env()

    def gateways(self) -> GatewayFactory:
        return GatewayFactory(self.resolved_api_base(), self.timeout_seconds)

    def push_options(self) -> PushOptions:
        return PushOptions(
            dry_run=self.dry_run,
            pacing=self.pacing,
            rate_fraction=self.rate_fraction,
            retry=RetryPolicy(self.max_attempts, self.backoff_base_seconds, self.backoff_max_seconds),
            workers=self.max_workers,
            reconcile_after=timedelta(hours=self.reconcile_after_hours),
        )
