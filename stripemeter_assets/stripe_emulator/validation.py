"""What Stripe checks about a meter event *after* answering 200.

Stripe validates meter events asynchronously: only parameter types, the timestamp window
and a duplicate identifier are refused at once; an unknown customer, missing payload keys,
an inactive meter, an invalid value or too many digits are accepted with 200, the event is
dropped, and the error is reported later through the thin events
``v1.billing.meter.error_report_triggered`` / ``v1.billing.meter.no_meter_found``
(https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage-api#error-codes,
https://docs.stripe.com/api/v2/events/event-types).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .state import Meter, ScopeStore

MAX_SIGNIFICANT_DIGITS = 15
_INT_RE = re.compile(r"^-?[0-9]+$")

# Codes as Stripe's error reports name them (recording-usage-api, "Error codes").
NO_METER = "no_meter"
ARCHIVED_METER = "archived_meter"
NO_CUSTOMER_DEFINED = "meter_event_no_customer_defined"
CUSTOMER_NOT_FOUND = "meter_event_customer_not_found"
VALUE_NOT_FOUND = "meter_event_value_not_found"
INVALID_VALUE = "meter_event_invalid_value"


@dataclass(frozen=True)
class Verdict:
    meter: Meter | None          # the active meter, or the inactive one an archived_meter error names
    customer: str | None
    value: int | None
    code: str | None = None      # None: valid
    message: str = ""


def _meters_named(store: ScopeStore, event_name: str) -> tuple[Meter | None, Meter | None]:
    active = inactive = None
    for meter in store.meters.values():
        if meter.event_name == event_name:
            if meter.status == "active":
                active = meter
            else:
                inactive = inactive or meter
    return active, inactive


def check(store: ScopeStore, event_name: str, payload: dict[str, Any]) -> Verdict:
    active, inactive = _meters_named(store, event_name)
    if active is None:
        if inactive is not None:
            return Verdict(inactive, None, None, ARCHIVED_METER,
                           f"Meter {inactive.id} for event_name '{event_name}' is inactive.")
        return Verdict(None, None, None, NO_METER, f"No active meter was found that matches the event_name "
                                                   f"'{event_name}'.")
    meter = active
    customer = payload.get(meter.customer_key)
    if not customer:
        return Verdict(meter, None, None, NO_CUSTOMER_DEFINED,
                       f"Customer mapping key {meter.customer_key} not found in payload.")
    if customer not in store.customers:
        return Verdict(meter, customer, None, CUSTOMER_NOT_FOUND, f"Customer {customer} was not found.")
    raw = payload.get(meter.value_key)
    if raw is None:
        if meter.formula == "count":
            return Verdict(meter, customer, None)
        return Verdict(meter, customer, None, VALUE_NOT_FOUND, f"Value key {meter.value_key} not found in payload.")
    text = str(raw).strip()
    if not _INT_RE.match(text):
        return Verdict(meter, customer, None, INVALID_VALUE, f"Value {raw!r} is not a whole number.")
    if len(text.lstrip("-").lstrip("0")) > MAX_SIGNIFICANT_DIGITS:
        return Verdict(meter, customer, None, INVALID_VALUE,
                       f"Value {raw!r} has more than {MAX_SIGNIFICANT_DIGITS} significant digits.")
    return Verdict(meter, customer, int(text))
