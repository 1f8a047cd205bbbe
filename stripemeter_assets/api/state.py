"""What one API server holds: config, paths, the landing writer, the
idempotency store, auth, rate limits and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from stripemeter_assets import settings
from stripemeter_assets.api.auth import Authenticator, RateLimiter
from stripemeter_assets.api.idempotency import IdempotencyStore, KeyedLocks
from stripemeter_assets.api.metrics import ApiMetrics, SnapshotCollector
from stripemeter_assets.sdk.writer import LandingWriter


@dataclass
class ApiState:
    config: settings.Config
    landing_url: str
    analytics_path: str
    writer: LandingWriter
    idempotency: IdempotencyStore
    auth: Authenticator
    limiter: RateLimiter
    registry: CollectorRegistry
    metrics: ApiMetrics
    widget_secret: bytes | None
    idempotency_locks: KeyedLocks = field(default_factory=KeyedLocks)

    @classmethod
    def from_settings(cls) -> ApiState:
        config = settings.load_config()
        landing = settings.landing_url()
        analytics = settings.analytics_path()
        registry = CollectorRegistry()
        registry.register(SnapshotCollector(analytics, landing, settings.now))
        return cls(
            config=config,
            landing_url=landing,
            analytics_path=analytics,
            writer=LandingWriter(landing),
            idempotency=IdempotencyStore(settings.api_state_path(), config.api.idempotency_hours),
            auth=Authenticator(config.api.keys),
            limiter=RateLimiter(config.api),
            registry=registry,
            metrics=ApiMetrics(registry),
            widget_secret=settings.widget_secret(),
        )
