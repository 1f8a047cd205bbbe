"""Stripe as a Dagster resource: where the API is and how to pace and retry.
Keys are never config: they are read from the environment
(`STRIPE_API_KEY`, `STRIPE_TEST_API_KEY`) when a call needs them."""

import os
from datetime import timedelta

import dagster as dg

from stripemeter_assets.push.client import API_BASE_ENV, GatewayFactory, KeyStatus
from stripemeter_assets.push.pacing import RetryPolicy
from stripemeter_assets.push.run import PushOptions


class StripeResource(dg.ConfigurableResource):
    """The Stripe API (real, or the emulator through `STRIPE_API_BASE`).

    `dry_run` records intents as `planned` and sends nothing, as does a
    missing `STRIPE_API_KEY`. `pacing` keeps calls under `rate_fraction` of
    Stripe's documented limits for the key's mode.
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
        return self.api_base or os.environ.get(API_BASE_ENV) or None

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
