"""What the push checks before sending (DESIGN §4, "What Stripe checks later").

Stripe validates meter events asynchronously: a 200 only means "received"
(https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage-api#error-codes).
So before a meter event is sent, what can be checked is checked, once per run:

- the meter with the mapping's `event_name` exists and is active;
- its `default_aggregation.formula` is the one the counter needs: `sum` for
  sum/count counters (a `count` meter would bill the number of pushes), `last`
  for max/last counters;
- it has no `event_time_window` (a pre-aggregated meter keeps only the latest
  event per hour/day, which turns delta pushes into wrong totals);
- the payload keys come from the meter (`customer_mapping.event_payload_key`,
  `value_settings.event_payload_key`) and are the ones the event is sent with;
- the Stripe customer exists (looked up unless a push to it was acknowledged
  and no error report has called it unknown since).

What fails is refused with its reason (`refused_meter_config`,
`refused_unknown_customer`) and never sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from stripemeter_assets.push.client import Gateway, MeterInfo

REFUSED_METER_CONFIG = "refused_meter_config"
REFUSED_UNKNOWN_CUSTOMER = "refused_unknown_customer"


@dataclass(frozen=True)
class Refusal:
    status: str
    reason: str


@dataclass(frozen=True)
class PayloadKeys:
    customer_key: str
    value_key: str


def meter_problem(meter: MeterInfo | None, event_name: str, formula: str, meter_id: str | None) -> str | None:
    """Why events for `event_name` cannot be billed as a `formula` counter, or None."""
    if meter is None:
        return f"no meter with event_name {event_name!r} on this account"
    if meter_id is not None and meter.id != meter_id:
        return f"the active meter for {event_name!r} is {meter.id}, not the configured {meter_id}"
    if meter.status != "active":
        return f"meter {meter.id} ({event_name!r}) is {meter.status}: Stripe drops its events"
    if meter.formula != formula:
        return (f"meter {meter.id} ({event_name!r}) aggregates with formula {meter.formula!r}; this counter "
                f"needs {formula!r}" + (" (a count meter bills the number of pushes, not the usage)"
                                        if meter.formula == "count" else ""))
    if meter.event_time_window is not None:
        return (f"meter {meter.id} ({event_name!r}) is pre-aggregated per {meter.event_time_window}: Stripe keeps "
                "only the latest event of each window, which breaks delta pushes")
    return None


class Preflight:
    """Meters and customers as Stripe has them, fetched once per gateway
    (key and account) per run; thread-safe (the sender's workers share it).
    Gateways live as long as the run, so their ids are stable keys."""

    def __init__(self, before_call: Callable[[Gateway], None] = lambda gateway: None) -> None:
        self._before_call = before_call  # pacing of the reads
        self._lock = threading.Lock()
        self._meters: dict[int, dict[str, MeterInfo]] = {}
        self._customers: dict[tuple[int, str], bool] = {}
        self._verified: set[tuple[str, str, str]] = set()

    def trust(self, verified: set[tuple[str, str, str]]) -> None:
        """(mode, account, customer) already known to Stripe: not looked up
        again (10k customers would cost 10k reads a run); a later deletion is
        caught by Stripe's error reports."""
        self._verified = set(verified)

    def _meter(self, gateway: Gateway, event_name: str) -> MeterInfo | None:
        # Fetched under the lock: the workers share one look-up per gateway.
        with self._lock:
            meters = self._meters.get(id(gateway))
            if meters is None:
                meters = {}
                self._before_call(gateway)
                for m in gateway.meters():  # an active meter wins over inactive ones with the same name
                    if m.event_name not in meters or m.status == "active":
                        meters[m.event_name] = m
                self._meters[id(gateway)] = meters
            return meters.get(event_name)

    def _customer_exists(self, gateway: Gateway, customer: str) -> bool:
        if (gateway.mode, gateway.account or "platform", customer) in self._verified:
            return True
        with self._lock:
            known = self._customers.get((id(gateway), customer))
            if known is None:
                self._before_call(gateway)
                known = self._customers[(id(gateway), customer)] = gateway.customer_exists(customer)
            return known

    def check(self, gateway: Gateway, *, event_name: str, formula: str, meter_id: str | None,
              customer: str) -> Refusal | PayloadKeys:
        """Raises PushCallError when Stripe could not be asked."""
        meter = self._meter(gateway, event_name)
        problem = meter_problem(meter, event_name, formula, meter_id)
        if problem is not None:
            return Refusal(REFUSED_METER_CONFIG, problem)
        assert meter is not None
        if not self._customer_exists(gateway, customer):
            return Refusal(REFUSED_UNKNOWN_CUSTOMER, f"Stripe customer {customer} does not exist on this account")
        return PayloadKeys(meter.customer_key, meter.value_key)

    def meter_id(self, gateway: Gateway, event_name: str) -> str | None:
        meter = self._meter(gateway, event_name)
        return meter.id if meter is not None else None
