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
# Stripe's invoice finalization grace period: 1 h by default, at most 72 h
# (https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period).
DEFAULT_GRACE_HOURS = 1.0
MAX_GRACE_HOURS = 72.0


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
    # `stripe.invoice_grace_hours`: one number for every account, or a mapping
    # of account (`acct_…`, `platform`) to hours with an optional `default`.
    invoice_grace_hours: float = DEFAULT_GRACE_HOURS
    invoice_grace_by_account: dict[str, float] = field(default_factory=dict)
    invoice_tolerance: Decimal = Decimal("0.01")
    raw: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> MetricSpec:
        # Unknown metrics still land and count, with the default aggregation.
        return self.metrics.get(name) or MetricSpec(name)

    def lateness(self, metric: str) -> timedelta:
        hours = self.metric(metric).lateness_hours
        return timedelta(hours=self.lateness_hours if hours is None else hours)

    def invoice_grace(self, account: str | None) -> timedelta:
        """The account's invoice finalization grace period G (`None` = the platform)."""
        hours = self.invoice_grace_by_account.get(account or "platform", self.invoice_grace_hours)
        return timedelta(hours=hours)

    def lateness_beyond_grace(self) -> list[str]:
        """Metrics whose lateness window L exceeds the smallest grace period G: valid
        (late data still folds into local counters), reported once at start."""
        grace = min([self.invoice_grace_hours, *self.invoice_grace_by_account.values()])
        windows = {"(default)": self.lateness_hours, **{m.name: m.lateness_hours for m in self.metrics.values()
                                                        if m.lateness_hours is not None}}
        return [f"{name}: L {hours:g} h > G {grace:g} h" for name, hours in windows.items() if hours > grace]


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
    grace, by_account = _grace(stripe.get("invoice_grace_hours", DEFAULT_GRACE_HOURS))
    return Config(
        lateness_hours=float(data.get("lateness_hours", 48)),
        drift_epsilon=Decimal(str(data.get("drift_epsilon", "0.005"))),
        close_policy=policy,
        max_clock_skew_hours=float(data.get("max_clock_skew_hours", 1)),
        metrics=metrics,
        stripe=stripe,
        invoice_grace_hours=grace,
        invoice_grace_by_account=by_account,
        invoice_tolerance=Decimal(str(data.get("invoice_tolerance", "0.01"))),
        raw=data,
    )


def _grace_hours(value: Any, where: str) -> float:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {value!r} is not a number of hours") from None
    if not DEFAULT_GRACE_HOURS <= hours <= MAX_GRACE_HOURS:
        raise ConfigError(f"{where}: {hours:g} is outside Stripe's 1..72 hours")
    return hours


def _grace(value: Any) -> tuple[float, dict[str, float]]:
    if not isinstance(value, dict):
        return _grace_hours(value, "stripe.invoice_grace_hours"), {}
    default = _grace_hours(value.get("default", DEFAULT_GRACE_HOURS), "stripe.invoice_grace_hours.default")
    return default, {str(k): _grace_hours(v, f"stripe.invoice_grace_hours.{k}") for k, v in value.items()
                     if k != "default"}


def load_config(path: str | None = None) -> Config:
    path = path or config_path()
    if not Path(path).exists():
        return parse_config({})
    with open(path) as fh:
        return parse_config(yaml.safe_load(fh))
