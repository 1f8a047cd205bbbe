"""The `stripe:` section of the config: which (tenant, metric) goes to which
Stripe meter, which customer ref is which Stripe customer, which tenant is
which (Connect) account, and which mappings are shadow-only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stripemeter_assets.settings import ConfigError

PLATFORM = "platform"  # the key's own account (no Stripe-Account header)
WILDCARD = "*"
SUM_AGGREGATIONS = ("sum", "count")
LAST_AGGREGATIONS = ("max", "last")


def meter_formula(aggregation: str) -> str:
    """Stripe meter formula for a local aggregation: sum/count counters push
    deltas to a `sum` meter, max/last counters push values to a `last` meter."""
    return "sum" if aggregation in SUM_AGGREGATIONS else "last"


@dataclass(frozen=True)
class MeterMapping:
    tenant: str            # a tenant id or "*"
    metric: str
    event_name: str
    meter_id: str | None = None
    shadow: bool = False
    account: str | None = None  # overrides `stripe.accounts` for this mapping


@dataclass(frozen=True)
class StripeMapping:
    meters: tuple[MeterMapping, ...] = ()
    customers: dict[str, str] | None = None
    accounts: dict[str, str] | None = None

    @classmethod
    def from_config(cls, stripe: dict[str, Any] | None) -> StripeMapping:
        stripe = stripe or {}
        meters = []
        for i, entry in enumerate(stripe.get("meters") or []):
            where = f"stripe.meters[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: must be a mapping")
            for key in ("metric", "event_name"):
                if not entry.get(key) or not isinstance(entry[key], str):
                    raise ConfigError(f"{where}.{key}: required string")
            account = entry.get("account")
            if account is not None and not str(account).startswith("acct_"):
                raise ConfigError(f"{where}.account: must be an acct_… id")
            meters.append(MeterMapping(
                tenant=str(entry.get("tenant", WILDCARD)),
                metric=entry["metric"],
                event_name=entry["event_name"],
                meter_id=entry.get("meter_id") or None,
                shadow=bool(entry.get("shadow", False)),
                account=account,
            ))
        accounts = {str(k): str(v) for k, v in (stripe.get("accounts") or {}).items()}
        for tenant, acct in accounts.items():
            if not acct.startswith("acct_"):
                raise ConfigError(f"stripe.accounts.{tenant}: must be an acct_… id")
        customers = {str(k): str(v) for k, v in (stripe.get("customers") or {}).items()}
        for ref, cus in customers.items():
            if not cus.startswith("cus_"):
                raise ConfigError(f"stripe.customers.{ref}: must be a cus_… id")
        return cls(meters=tuple(meters), customers=customers, accounts=accounts)

    def meter_for(self, tenant: str, metric: str) -> MeterMapping | None:
        """An entry naming the tenant wins over a "*" entry; among equals, the first."""
        wildcard = None
        for m in self.meters:
            if m.metric != metric:
                continue
            if m.tenant == tenant:
                return m
            if m.tenant == WILDCARD and wildcard is None:
                wildcard = m
        return wildcard

    def account_for(self, tenant: str, meter: MeterMapping) -> str:
        return meter.account or (self.accounts or {}).get(tenant) or PLATFORM
