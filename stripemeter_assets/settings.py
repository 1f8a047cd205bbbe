"""Runtime settings: environment variables plus the YAML config (DESIGN §7).

Every setting has a working default for the local demo, rooted at the
project's `data/` folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
AGGREGATIONS = ("sum", "count", "max", "last")


def landing_url() -> str:
    return os.environ.get("STRIPEMETER_LANDING") or str(DATA_DIR / "landing")


def warehouse_path() -> str:
    return os.environ.get("STRIPEMETER_WAREHOUSE") or str(DATA_DIR / "warehouse.duckdb")


def analytics_path() -> str:
    return os.environ.get("STRIPEMETER_ANALYTICS") or str(DATA_DIR / "analytics.duckdb")


def config_path() -> str:
    return os.environ.get("STRIPEMETER_CONFIG") or str(DATA_DIR / "config" / "stripemeter.yaml")


def api_state_path() -> str:
    """The HTTP API's durable state (idempotent answers): beside the warehouse
    by default, never in the landing area the ingest scans."""
    return os.environ.get("STRIPEMETER_API_STATE") or str(Path(warehouse_path()).parent / "api_state.sqlite")


def dagster_home() -> str:
    """The Dagster instance's folder (`DAGSTER_HOME`), the local demo's by default."""
    return os.environ.get("DAGSTER_HOME") or str(DATA_DIR / "dagster_home")


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus `extra`, for a child process (a
    `dagster` command) that must see the same settings."""
    return {**os.environ, **extra}


def widget_secret() -> bytes | None:
    """HMAC key of customer-widget tokens; a secret, so only from the environment."""
    secret = os.environ.get("STRIPEMETER_WIDGET_SECRET")
    return secret.encode("utf-8") if secret else None


def now() -> datetime:
    """Current UTC time, frozen by `STRIPEMETER_NOW` for as-of runs and tests."""
    frozen = os.environ.get("STRIPEMETER_NOW")
    if not frozen:
        return datetime.now(UTC)
    parsed = datetime.fromisoformat(frozen.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    aggregation: str = "sum"
    lateness_hours: float | None = None
    unit_scale: int = 1
    allow_negative: bool = False


@dataclass(frozen=True)
class ApiKey:
    """One bearer key of the HTTP API: its SHA-256 (hex) and the tenants it may use."""

    sha256: str
    tenants: frozenset[str]


@dataclass(frozen=True)
class ApiConfig:
    """The `api:` section (`stripemeter serve`)."""

    keys: tuple[ApiKey, ...] = ()
    rate_limit_per_second: float = 200.0  # requests per key, sustained
    rate_limit_burst: int = 400
    max_snapshot_age_minutes: float = 60.0  # /health/ready fails beyond this
    idempotency_hours: float = 24.0  # how long an Idempotency-Key replays its first answer


@dataclass(frozen=True)
class Config:
    """The parsed `STRIPEMETER_CONFIG` YAML."""

    lateness_hours: float = 48.0
    drift_epsilon: Decimal = Decimal("0.005")
    close_policy: str = "carry_forward"
    max_clock_skew_hours: float = 1.0
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    stripe: dict[str, Any] = field(default_factory=dict)
    api: ApiConfig = field(default_factory=ApiConfig)
    raw: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> MetricSpec:
        # Unknown metrics still land and count, with the default aggregation.
        return self.metrics.get(name) or MetricSpec(name)

    def lateness(self, metric: str) -> timedelta:
        hours = self.metric(metric).lateness_hours
        return timedelta(hours=self.lateness_hours if hours is None else hours)


class ConfigError(ValueError):
    """The config YAML is invalid; the message names the key."""


def _parse_api(data: dict[str, Any]) -> ApiConfig:
    keys = []
    for i, entry in enumerate(data.get("keys") or []):
        digest = str((entry or {}).get("sha256", "")).strip().lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ConfigError(f"api.keys[{i}].sha256: must be the 64 hex digits of the key's SHA-256")
        tenants = entry.get("tenants") or []
        if not isinstance(tenants, list) or not tenants or not all(isinstance(t, str) and t for t in tenants):
            raise ConfigError(f"api.keys[{i}].tenants: must be a non-empty list of tenant ids")
        keys.append(ApiKey(sha256=digest, tenants=frozenset(tenants)))
    defaults = ApiConfig()
    rate = float(data.get("rate_limit_per_second", defaults.rate_limit_per_second))
    burst = int(data.get("rate_limit_burst", max(defaults.rate_limit_burst, rate)))
    if rate <= 0 or burst < 1:
        raise ConfigError("api.rate_limit_per_second and api.rate_limit_burst: must be positive")
    return ApiConfig(
        keys=tuple(keys),
        rate_limit_per_second=rate,
        rate_limit_burst=burst,
        max_snapshot_age_minutes=float(data.get("max_snapshot_age_minutes", defaults.max_snapshot_age_minutes)),
        idempotency_hours=float(data.get("idempotency_hours", defaults.idempotency_hours)),
    )


def parse_config(data: dict[str, Any] | None) -> Config:
    data = data or {}
    metrics = {}
    for name, spec in (data.get("metrics") or {}).items():
        spec = spec or {}
        aggregation = spec.get("aggregation", "sum")
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"metrics.{name}.aggregation: {aggregation!r} is not one of {AGGREGATIONS}")
        scale = int(spec.get("unit_scale", 1))
        if scale < 1:
            raise ConfigError(f"metrics.{name}.unit_scale: must be a positive integer")
        metrics[name] = MetricSpec(
            name=name,
            aggregation=aggregation,
            lateness_hours=spec.get("lateness_hours"),
            unit_scale=scale,
            allow_negative=bool(spec.get("allow_negative", False)),
        )
    policy = data.get("close_policy", "carry_forward")
    if policy not in ("carry_forward", "hold"):
        raise ConfigError(f"close_policy: {policy!r} is not carry_forward or hold")
    return Config(
        lateness_hours=float(data.get("lateness_hours", 48)),
        drift_epsilon=Decimal(str(data.get("drift_epsilon", "0.005"))),
        close_policy=policy,
        max_clock_skew_hours=float(data.get("max_clock_skew_hours", 1)),
        metrics=metrics,
        stripe=data.get("stripe") or {},
        api=_parse_api(data.get("api") or {}),
        raw=data,
    )


def load_config(path: str | None = None) -> Config:
    path = path or config_path()
    if not Path(path).exists():
        return parse_config({})
    with open(path) as fh:
        return parse_config(yaml.safe_load(fh))
