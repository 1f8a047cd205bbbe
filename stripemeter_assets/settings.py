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
class Config:
    """The parsed `STRIPEMETER_CONFIG` YAML."""

    lateness_hours: float = 48.0
    drift_epsilon: Decimal = Decimal("0.005")
    close_policy: str = "carry_forward"
    max_clock_skew_hours: float = 1.0
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    stripe: dict[str, Any] = field(default_factory=dict)
    # `stripe.summary_settle_minutes`: Stripe's meter event summaries are
    # eventually consistent, so a summary is trusted only for pushes
    # acknowledged at least this long before the read (DESIGN §4).
    summary_settle_minutes: float = 60.0
    auto_correct: bool = True  # reconciliation re-sends confirmed under-reports
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def summary_settle(self) -> timedelta:
        return timedelta(minutes=self.summary_settle_minutes)

    def metric(self, name: str) -> MetricSpec:
        # Unknown metrics still land and count, with the default aggregation.
        return self.metrics.get(name) or MetricSpec(name)

    def lateness(self, metric: str) -> timedelta:
        hours = self.metric(metric).lateness_hours
        return timedelta(hours=self.lateness_hours if hours is None else hours)


class ConfigError(ValueError):
    """The config YAML is invalid; the message names the key."""


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
    stripe = data.get("stripe") or {}
    settle = float(stripe.get("summary_settle_minutes", 60))
    if settle < 0:
        raise ConfigError("stripe.summary_settle_minutes: must be >= 0")
    return Config(
        lateness_hours=float(data.get("lateness_hours", 48)),
        drift_epsilon=Decimal(str(data.get("drift_epsilon", "0.005"))),
        close_policy=policy,
        max_clock_skew_hours=float(data.get("max_clock_skew_hours", 1)),
        metrics=metrics,
        stripe=stripe,
        summary_settle_minutes=settle,
        auto_correct=bool(data.get("auto_correct", True)),
        raw=data,
    )


def load_config(path: str | None = None) -> Config:
    path = path or config_path()
    if not Path(path).exists():
        return parse_config({})
    with open(path) as fh:
        return parse_config(yaml.safe_load(fh))
