"""Runtime settings: environment variables plus the YAML config (DESIGN §7),
and the clock: `now()` and the UTC time helpers every stage uses.

The one place that reads the environment and the config file. Every setting
has a working default for the local demo, rooted at the data folder
(`STRIPEMETER_DATA`, default `./data` in the working directory), never in
the package's source.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from stripemeter_assets.push.mapping import StripeMapping

AGGREGATIONS = ("sum", "count", "max", "last")
# Stripe's invoice finalization grace period: 1 h by default, at most 72 h
# (https://docs.stripe.com/billing/subscriptions/usage-based/configure-grace-period).
DEFAULT_GRACE_HOURS = 1.0
MAX_GRACE_HOURS = 72.0
DEFAULT_PRE_INVOICE_CRON = "0 6 * * *"
DEFAULT_LANDING_SETTLE_SECONDS = 2.0
DEFAULT_MEMORY_LIMIT = "2GB"
# Stripe keys: DESIGN §4 names; the original StripeMeter's names are accepted as the same keys.
LIVE_KEY_ENVS = ("STRIPE_API_KEY", "STRIPE_SECRET_KEY")
TEST_KEY_ENVS = ("STRIPE_TEST_API_KEY", "STRIPE_TEST_SECRET_KEY")


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def data_dir() -> Path:
    return Path(_env("STRIPEMETER_DATA") or "data").resolve()


def landing_url() -> str:
    return _env("STRIPEMETER_LANDING") or str(data_dir() / "landing")


def warehouse_path() -> str:
    return _env("STRIPEMETER_WAREHOUSE") or str(data_dir() / "warehouse.duckdb")


def analytics_path() -> str:
    return _env("STRIPEMETER_ANALYTICS") or str(data_dir() / "analytics.duckdb")


def config_path() -> str:
    return _env("STRIPEMETER_CONFIG") or str(data_dir() / "config" / "stripemeter.yaml")


def reports_dir() -> Path:
    """Reports sit beside the warehouse they describe, so two warehouses never share a folder."""
    explicit = _env("STRIPEMETER_REPORTS")
    return Path(explicit) if explicit else Path(warehouse_path()).resolve().parent / "reports"


def dagster_home() -> Path:
    """`DAGSTER_HOME`, defaulting to the data folder's instance."""
    return Path(_env("DAGSTER_HOME") or data_dir() / "dagster_home")


def partitions_start() -> str:
    return _env("STRIPEMETER_PARTITIONS_START") or "2024-01-01"


def landing_settle_seconds() -> float:
    """A landing file must be this old (seconds since its last change) to be picked up."""
    value = _env("STRIPEMETER_SETTLE_SECONDS")
    return DEFAULT_LANDING_SETTLE_SECONDS if value is None else float(value)


def memory_limit() -> str:
    return _env("STRIPEMETER_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT


def stripe_api_base() -> str | None:
    return _env("STRIPE_API_BASE")


def stripe_live_key() -> str | None:
    return next((k for k in map(_env, LIVE_KEY_ENVS) if k), None)


def stripe_test_key() -> str | None:
    return next((k for k in map(_env, TEST_KEY_ENVS) if k), None)


def stripe_key_env_names() -> tuple[str, ...]:
    return LIVE_KEY_ENVS + TEST_KEY_ENVS


def stripe_keys_set() -> list[str]:
    """Every Stripe key the environment holds, under any name (to scrub them from text)."""
    return [k for k in map(_env, stripe_key_env_names()) if k]


def use_environment(values: Mapping[str, str], *, only_unset: bool = False) -> None:
    """Set variables for this process and the runs it starts (the demo points Stripe at its emulator)."""
    for name, value in values.items():
        if only_unset:
            os.environ.setdefault(name, value)
        else:
            os.environ[name] = value


def api_state_path() -> str:
    """The HTTP API's durable state (idempotent answers): beside the warehouse
    by default, never in the landing area the ingest scans."""
    return _env("STRIPEMETER_API_STATE") or str(Path(warehouse_path()).parent / "api_state.sqlite")


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment plus `extra`, for a child process (a
    `dagster` command) that must see the same settings."""
    return {**os.environ, **extra}


def widget_secret() -> bytes | None:
    """HMAC key of customer-widget tokens; a secret, so only from the environment."""
    secret = _env("STRIPEMETER_WIDGET_SECRET")
    return secret.encode("utf-8") if secret else None


def frozen_now() -> str | None:
    """`STRIPEMETER_NOW` as given: an ISO time that freezes the clock, or None."""
    return _env("STRIPEMETER_NOW")


def now() -> datetime:
    """Current UTC time, frozen by `STRIPEMETER_NOW` for as-of runs and tests."""
    frozen = frozen_now()
    return utc(frozen) if frozen else datetime.now(UTC)


# Time arithmetic of days and periods. The warehouse's TIMESTAMP columns hold
# UTC wall time without tzinfo; Stripe takes epoch seconds.

def utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC) or an ISO text (`Z` or an offset)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive(ts: datetime) -> datetime:
    """UTC wall time without tzinfo, as the warehouse holds it."""
    if ts.tzinfo is None:  # already: the warehouse's own values, on every counter a push plans
        return ts
    return ts.astimezone(UTC).replace(tzinfo=None)


def epoch(ts: datetime) -> int:
    if ts.tzinfo is None:
        return int((ts - _EPOCH) / _SECOND)  # truncated, as int(timestamp()) is
    return int(ts.timestamp())


_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)


def midnight(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(ts: datetime) -> datetime:
    return midnight(naive(ts)).replace(day=1)


def next_month(start: datetime) -> datetime:
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def month_starts(start: datetime, end: datetime) -> list[datetime]:
    """Starts of the calendar months overlapping [start, end)."""
    first = midnight(start).replace(day=1)
    months = []
    while first < end:
        months.append(first)
        first = next_month(first)
    return months


def bundled(name: str) -> str:
    """Text of a file shipped with the package's defaults (`data/config/` in the checkout)."""
    return importlib.resources.files("stripemeter_assets.bundled").joinpath(name).read_text()


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
    """The parsed `STRIPEMETER_CONFIG` YAML, every section typed."""

    lateness_hours: float = 48.0
    drift_epsilon: Decimal = Decimal("0.005")
    close_policy: str = "carry_forward"
    max_clock_skew_hours: float = 1.0
    metrics: dict[str, MetricSpec] = field(default_factory=dict)
    stripe: StripeMapping = field(default_factory=lambda: _stripe_mapping(None))
    prices: Mapping[str, Any] = field(default_factory=dict)
    prices_by_tenant: Mapping[str, Any] = field(default_factory=dict)
    pre_invoice_cron: str = DEFAULT_PRE_INVOICE_CRON
    # `stripe.summary_settle_minutes`: Stripe's meter event summaries are
    # eventually consistent, so a summary is trusted only for pushes
    # acknowledged at least this long before the read (DESIGN §4).
    summary_settle_minutes: float = 60.0
    auto_correct: bool = True  # reconciliation re-sends confirmed under-reports
    # `stripe.invoice_grace_hours`: one number for every account, or a mapping
    # of account (`acct_…`, `platform`) to hours with an optional `default`.
    invoice_grace_hours: float = DEFAULT_GRACE_HOURS
    invoice_grace_by_account: dict[str, float] = field(default_factory=dict)
    invoice_tolerance: Decimal = Decimal("0.01")
    api: ApiConfig = field(default_factory=ApiConfig)

    @property
    def summary_settle(self) -> timedelta:
        return timedelta(minutes=self.summary_settle_minutes)

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


def _stripe_mapping(section: dict[str, Any] | None) -> StripeMapping:
    from stripemeter_assets.push.mapping import StripeMapping  # its rules live with the push; imported late (cycle)

    return StripeMapping.from_config(section)


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
    settle = float((data.get("stripe") or {}).get("summary_settle_minutes", 60))
    if settle < 0:
        raise ConfigError("stripe.summary_settle_minutes: must be >= 0")
    stripe = data.get("stripe") or {}
    grace, by_account = _grace(stripe.get("invoice_grace_hours", DEFAULT_GRACE_HOURS))
    return Config(
        lateness_hours=float(data.get("lateness_hours", 48)),
        drift_epsilon=Decimal(str(data.get("drift_epsilon", "0.005"))),
        close_policy=policy,
        max_clock_skew_hours=float(data.get("max_clock_skew_hours", 1)),
        metrics=metrics,
        stripe=_stripe_mapping(data.get("stripe")),
        prices=data.get("prices") or {},
        prices_by_tenant=data.get("prices_by_tenant") or {},
        pre_invoice_cron=str(data.get("pre_invoice_cron") or DEFAULT_PRE_INVOICE_CRON),
        summary_settle_minutes=settle,
        auto_correct=bool(data.get("auto_correct", True)),
        api=_parse_api(data.get("api") or {}),
        invoice_grace_hours=grace,
        invoice_grace_by_account=by_account,
        invoice_tolerance=Decimal(str(data.get("invoice_tolerance", "0.01"))),
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
