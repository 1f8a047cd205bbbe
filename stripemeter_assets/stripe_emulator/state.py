"""The emulator's in-memory Stripe: customers, meters, meter events, idempotency records.

Everything is kept per scope ``(livemode, account)``: live and test keys never see each
other's objects, and each ``Stripe-Account`` is its own world (``account=None`` is the
platform). One re-entrant lock guards the whole store; the HTTP handler holds it across
the idempotency lookup, the endpoint and the idempotency save so a request is atomic.

The rules are Stripe's documented ones for Billing Meters (API reference of meters,
meter events, meter event adjustments and meter event summaries):
- meter event ``timestamp`` within the past 35 calendar days and at most 5 minutes ahead;
- ``identifier`` unique per account within a rolling 24 h;
- values are whole numbers (at most 15 significant digits, negative allowed), checked
  asynchronously with the customer, payload keys and meter status (``validation``): 200 now,
  an error report later (``v2_events``);
- summaries lag received events by ``summary_lag_seconds``; pre-aggregated meters
  (``event_time_window``) keep the latest event per hour/day;
- adjustments cancel one event by identifier, within 24 h of Stripe receiving it;
- summaries: ``start_time``/``end_time`` aligned to minutes (hours/days when grouped),
  start inclusive, end exclusive.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import string
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from . import errors, validation
from .errors import StripeError
from .v2_events import ErrorEntry, MeterErrorLog

MAX_EVENT_AGE_SECONDS = 35 * 86_400
MAX_EVENT_FUTURE_SECONDS = 5 * 60
IDENTIFIER_UNIQUE_SECONDS = 24 * 3_600
CANCEL_WINDOW_SECONDS = 24 * 3_600
IDEMPOTENCY_TTL_SECONDS = 24 * 3_600
FORMULAS = ("sum", "count", "last")
GROUPING_SECONDS = {"hour": 3_600, "day": 86_400}
REQUEST_LOG_MAX = 100_000
# Summaries are eventually consistent ("Meters events are aggregated asynchronously so the
# meter event summaries provide an eventually consistent view of the reported usage",
# https://docs.stripe.com/api/billing/meter-event-summary). Stripe gives no bound; the
# emulator shows an event in summaries this many seconds after receiving it.
DEFAULT_SUMMARY_LAG_SECONDS = 60

_INT_RE = re.compile(r"^-?[0-9]+$")
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, n: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(n))


Scope = tuple[bool, str | None]


@dataclass
class Customer:
    id: str
    created: int
    livemode: bool
    name: str | None = None
    email: str | None = None
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "customer",
            "created": self.created,
            "description": self.description,
            "email": self.email,
            "livemode": self.livemode,
            "metadata": dict(self.metadata),
            "name": self.name,
        }


@dataclass
class Meter:
    id: str
    created: int
    updated: int
    livemode: bool
    display_name: str
    event_name: str
    formula: str
    customer_key: str = "stripe_customer_id"
    value_key: str = "value"
    event_time_window: str | None = None
    status: str = "active"
    deactivated_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "billing.meter",
            "created": self.created,
            "customer_mapping": {"event_payload_key": self.customer_key, "type": "by_id"},
            "default_aggregation": {"formula": self.formula},
            "display_name": self.display_name,
            "event_name": self.event_name,
            "event_time_window": self.event_time_window,
            "livemode": self.livemode,
            "status": self.status,
            "status_transitions": {"deactivated_at": self.deactivated_at},
            "updated": self.updated,
            "value_settings": {"event_payload_key": self.value_key},
        }


@dataclass
class MeterEvent:
    seq: int  # reception order: breaks ties of the `last` formula
    identifier: str
    event_name: str
    payload: dict[str, str]
    timestamp: int
    created: int  # when the emulator received it
    livemode: bool
    account: str | None
    meter_id: str | None
    customer: str | None
    value: int | None
    source: str = "api"  # "api" or "emulator" (added through a test hook)
    cancelled_at: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "billing.meter_event",
            "created": self.created,
            "event_name": self.event_name,
            "identifier": self.identifier,
            "livemode": self.livemode,
            "payload": dict(self.payload),
            "timestamp": self.timestamp,
        }

    def to_hook_json(self) -> dict[str, Any]:
        return {
            **self.to_json(),
            "account": self.account,
            "meter": self.meter_id,
            "customer": self.customer,
            "value": self.value,
            "cancelled": self.cancelled_at is not None,
            "cancelled_at": self.cancelled_at,
            "source": self.source,
        }


@dataclass
class IdempotencyRecord:
    method: str
    path: str
    params: dict[str, Any]
    status: int
    body: bytes
    headers: dict[str, str]
    created: int
    request_id: str


@dataclass
class ScopeStore:
    customers: dict[str, Customer] = field(default_factory=dict)
    meters: dict[str, Meter] = field(default_factory=dict)
    events: list[MeterEvent] = field(default_factory=list)
    by_identifier: dict[str, MeterEvent] = field(default_factory=dict)
    # (event_name, payload customer) -> events, so a summary request reads one
    # customer's events instead of every event received.
    by_customer: dict[tuple[str, Any], list[MeterEvent]] = field(default_factory=dict)
    idempotency: dict[str, IdempotencyRecord] = field(default_factory=dict)
    deleted_customers: set[str] = field(default_factory=set)


# ---------------------------------------------------------------- parameter helpers


def _check_params(params: dict[str, Any], allowed: set[str]) -> None:
    for key in params:
        if key not in allowed:
            raise errors.unknown_param(key)


def _req_str(params: dict[str, Any], name: str, *, label: str | None = None) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise errors.missing_param(label or name)
    if not isinstance(value, str):
        raise errors.invalid(f"Invalid string: {label or name}", param=label or name)
    return value


def _opt_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.invalid(f"Invalid string: {name}", param=name)
    return value


def _int_param(value: Any, name: str) -> int:
    if not isinstance(value, str) or not _INT_RE.match(value):
        raise errors.invalid(f"Invalid integer: {value!r}", param=name, code="parameter_invalid_integer")
    return int(value)


def _sub(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise errors.invalid(f"Invalid object: {name}", param=name)
    return value


def _limit(params: dict[str, Any]) -> int:
    if params.get("limit") in (None, ""):
        return 10
    limit = _int_param(params["limit"], "limit")
    if not 1 <= limit <= 100:
        raise errors.invalid("Invalid limit: must be between 1 and 100.", param="limit")
    return limit


def paginate(items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
    """Stripe's list envelope over already-ordered items (each with an ``id``)."""
    limit = _limit(params)
    after = _opt_str(params, "starting_after")
    before = _opt_str(params, "ending_before")
    ids = [item["id"] for item in items]
    if after is not None:
        if after not in ids:
            raise errors.invalid(f"Invalid starting_after id: {after}", param="starting_after", code="resource_missing")
        rest = items[ids.index(after) + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif before is not None:
        if before not in ids:
            raise errors.invalid(f"Invalid ending_before id: {before}", param="ending_before", code="resource_missing")
        rest = items[: ids.index(before)]
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = items[:limit], len(items) > limit
    return {"object": "list", "data": page, "has_more": has_more, "url": url}


# ---------------------------------------------------------------- the store


class EmulatorState:
    def __init__(self, now: int | None = None) -> None:
        self.lock = threading.RLock()
        self._initial_now = now
        self._frozen_now: int | None = now
        self._scopes: dict[Scope, ScopeStore] = {}
        self._seq = 0
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_MAX)
        self.meter_errors = MeterErrorLog()
        self.summary_lag_seconds = DEFAULT_SUMMARY_LAG_SECONDS
        # Connected accounts the key may act on through Stripe-Account, per mode.
        self.connected: set[tuple[bool, str]] = set()

    # -- clock --------------------------------------------------------------
    def now(self) -> int:
        with self.lock:
            return self._frozen_now if self._frozen_now is not None else int(time.time())

    def clock_frozen(self) -> bool:
        with self.lock:
            return self._frozen_now is not None

    def set_clock(self, now: int | None) -> int:
        """Freeze the clock at ``now`` (epoch seconds); ``None`` returns to real time."""
        with self.lock:
            self._frozen_now = None if now is None else int(now)
            return self.now()

    def advance_clock(self, seconds: int) -> int:
        with self.lock:
            self._frozen_now = self.now() + int(seconds)
            return self._frozen_now

    # -- connected accounts ---------------------------------------------------
    def connect_account(self, account: str, livemode: bool | None = None) -> None:
        """The platform's keys (of ``livemode``, or both) may act on ``account``."""
        if not account.startswith("acct_"):
            raise errors.invalid(f"Invalid account id {account!r}", param="account")
        with self.lock:
            for mode in (True, False) if livemode is None else (bool(livemode),):
                self.connected.add((mode, account))

    def is_connected(self, livemode: bool, account: str) -> bool:
        with self.lock:
            return (bool(livemode), account) in self.connected

    # -- scopes -------------------------------------------------------------
    def scope(self, livemode: bool, account: str | None) -> ScopeStore:
        with self.lock:
            key = (bool(livemode), account or None)
            store = self._scopes.get(key)
            if store is None:
                store = self._scopes[key] = ScopeStore()
            return store

    def reset(self) -> None:
        with self.lock:
            self._scopes.clear()
            self._seq = 0
            self._frozen_now = self._initial_now
            self.request_log.clear()
            self.meter_errors.clear()
            self.connected.clear()

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.request_log.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(list(self.request_log))

    def clear_requests(self) -> None:
        with self.lock:
            self.request_log.clear()

    # -- idempotency ----------------------------------------------------------
    def idempotency_lookup(self, livemode: bool, account: str | None, key: str) -> IdempotencyRecord | None:
        with self.lock:
            store = self.scope(livemode, account)
            record = store.idempotency.get(key)
            if record is not None and self.now() - record.created >= IDEMPOTENCY_TTL_SECONDS:
                del store.idempotency[key]  # pruned after 24 h: the key starts a new request
                return None
            return record

    def idempotency_save(self, livemode: bool, account: str | None, key: str, record: IdempotencyRecord) -> None:
        with self.lock:
            self.scope(livemode, account).idempotency[key] = record

    # -- customers ------------------------------------------------------------
    def create_customer(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        if "id" in params:  # real Stripe generates customer ids; use the hook for fixed ids
            raise errors.unknown_param("id")
        metadata = _sub(params, "metadata") or {}
        with self.lock:
            store = self.scope(livemode, account)
            customer = Customer(
                id=new_id("cus_", 14),
                created=self.now(),
                livemode=livemode,
                name=_opt_str(params, "name"),
                email=_opt_str(params, "email"),
                description=_opt_str(params, "description"),
                metadata={str(k): str(v) for k, v in metadata.items()},
            )
            store.customers[customer.id] = customer
            return customer.to_json()

    def add_customer(
        self,
        customer_id: str,
        *,
        livemode: bool = False,
        account: str | None = None,
        name: str | None = None,
        email: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Test hook: a customer with a chosen id (replaces one with the same id)."""
        if not customer_id:
            raise errors.missing_param("id")
        with self.lock:
            customer = Customer(
                id=customer_id,
                created=self.now(),
                livemode=livemode,
                name=name,
                email=email,
                metadata=dict(metadata or {}),
            )
            if account is not None:
                self.connect_account(account, livemode)  # a test that sets up an account connects it
            store = self.scope(livemode, account)
            store.deleted_customers.discard(customer_id)
            store.customers[customer_id] = customer
            return customer.to_json()

    def get_customer(self, livemode: bool, account: str | None, customer_id: str) -> dict[str, Any]:
        with self.lock:
            store = self.scope(livemode, account)
            customer = store.customers.get(customer_id)
            if customer is None:
                if customer_id in store.deleted_customers:
                    return _deleted_customer(customer_id)
                raise errors.no_such("customer", customer_id)
            return customer.to_json()

    def delete_customer(self, livemode: bool, account: str | None, customer_id: str) -> dict[str, Any]:
        """DELETE /v1/customers/{id}: a deleted customer is retrieved as
        ``{"id", "object": "customer", "deleted": true}``
        (https://docs.stripe.com/api/customers/delete); its meter events fail validation."""
        with self.lock:
            store = self.scope(livemode, account)
            if store.customers.pop(customer_id, None) is None:
                raise errors.no_such("customer", customer_id)
            store.deleted_customers.add(customer_id)
            return _deleted_customer(customer_id)

    def list_customers(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            email = _opt_str(params, "email")
            items = [
                c.to_json()
                for c in reversed(list(self.scope(livemode, account).customers.values()))
                if email is None or c.email == email
            ]
            return paginate(items, params, "/v1/customers")

    # -- meters ---------------------------------------------------------------
    def _active_meter(self, store: ScopeStore, event_name: str) -> Meter | None:
        for meter in store.meters.values():
            if meter.status == "active" and meter.event_name == event_name:
                return meter
        return None

    def create_meter(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(
            params,
            {
                "display_name",
                "event_name",
                "default_aggregation",
                "customer_mapping",
                "value_settings",
                "event_time_window",
                "expand",
            },
        )
        display_name = _req_str(params, "display_name")
        event_name = _req_str(params, "event_name")
        aggregation = _sub(params, "default_aggregation")
        if aggregation is None:
            raise errors.missing_param("default_aggregation")
        formula = _req_str(aggregation, "formula", label="default_aggregation[formula]")
        if formula not in FORMULAS:
            raise errors.invalid(
                f"Invalid default_aggregation[formula]: must be one of {', '.join(FORMULAS)}",
                param="default_aggregation[formula]",
            )
        customer_key = "stripe_customer_id"
        mapping = _sub(params, "customer_mapping")
        if mapping is not None:
            customer_key = _req_str(mapping, "event_payload_key", label="customer_mapping[event_payload_key]")
            mapping_type = _req_str(mapping, "type", label="customer_mapping[type]")
            if mapping_type != "by_id":
                raise errors.invalid("Invalid customer_mapping[type]: must be by_id", param="customer_mapping[type]")
        value_key = "value"
        settings = _sub(params, "value_settings")
        if settings is not None:
            value_key = _req_str(settings, "event_payload_key", label="value_settings[event_payload_key]")
        window = _opt_str(params, "event_time_window")
        if window is not None and window not in GROUPING_SECONDS:
            raise errors.invalid("Invalid event_time_window: must be one of day, hour", param="event_time_window")
        with self.lock:
            store = self.scope(livemode, account)
            if self._active_meter(store, event_name) is not None:
                raise errors.invalid(
                    f"An active meter with event_name '{event_name}' already exists.",
                    param="event_name",
                    code="resource_already_exists",
                )
            now = self.now()
            meter = Meter(
                id=new_id("mtr_test_" if not livemode else "mtr_"),
                created=now,
                updated=now,
                livemode=livemode,
                display_name=display_name,
                event_name=event_name,
                formula=formula,
                customer_key=customer_key,
                value_key=value_key,
                event_time_window=window,
            )
            store.meters[meter.id] = meter
            return meter.to_json()

    def add_meter(
        self,
        event_name: str,
        *,
        formula: str = "sum",
        meter_id: str | None = None,
        display_name: str | None = None,
        livemode: bool = False,
        account: str | None = None,
        customer_key: str = "stripe_customer_id",
        value_key: str = "value",
        event_time_window: str | None = None,
    ) -> dict[str, Any]:
        """Test hook: a meter with an optional chosen id (same rules as the API otherwise)."""
        if account is not None:
            self.connect_account(account, livemode)
        if formula not in FORMULAS:
            raise errors.invalid(f"Invalid formula {formula!r}", param="formula")
        if event_time_window is not None and event_time_window not in GROUPING_SECONDS:
            raise errors.invalid("Invalid event_time_window: must be one of day, hour", param="event_time_window")
        with self.lock:
            store = self.scope(livemode, account)
            if self._active_meter(store, event_name) is not None:
                raise errors.invalid(
                    f"An active meter with event_name '{event_name}' already exists.",
                    param="event_name",
                    code="resource_already_exists",
                )
            now = self.now()
            meter = Meter(
                id=meter_id or new_id("mtr_test_" if not livemode else "mtr_"),
                created=now,
                updated=now,
                livemode=livemode,
                display_name=display_name or event_name,
                event_name=event_name,
                formula=formula,
                customer_key=customer_key,
                value_key=value_key,
                event_time_window=event_time_window,
            )
            store.meters[meter.id] = meter
            return meter.to_json()

    def _meter(self, store: ScopeStore, meter_id: str) -> Meter:
        meter = store.meters.get(meter_id)
        if meter is None:
            raise errors.no_such("billing.meter", meter_id)
        return meter

    def get_meter(self, livemode: bool, account: str | None, meter_id: str) -> dict[str, Any]:
        with self.lock:
            return self._meter(self.scope(livemode, account), meter_id).to_json()

    def list_meters(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"limit", "starting_after", "ending_before", "status", "expand"})
        status = _opt_str(params, "status")
        if status is not None and status not in ("active", "inactive"):
            raise errors.invalid("Invalid status: must be one of active, inactive", param="status")
        with self.lock:
            meters = list(self.scope(livemode, account).meters.values())
            items = [m.to_json() for m in reversed(meters) if status is None or m.status == status]
            return paginate(items, params, "/v1/billing/meters")

    def set_meter_status(self, livemode: bool, account: str | None, meter_id: str, active: bool) -> dict[str, Any]:
        with self.lock:
            store = self.scope(livemode, account)
            meter = self._meter(store, meter_id)
            now = self.now()
            if active and meter.status != "active":
                if self._active_meter(store, meter.event_name) is not None:
                    raise errors.invalid(
                        f"An active meter with event_name '{meter.event_name}' already exists.",
                        param="event_name",
                        code="resource_already_exists",
                    )
                meter.status, meter.deactivated_at, meter.updated = "active", None, now
            elif not active and meter.status == "active":
                meter.status, meter.deactivated_at, meter.updated = "inactive", now, now
            return meter.to_json()

    def update_meter(self, livemode: bool, account: str | None, meter_id: str, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"display_name", "expand"})
        with self.lock:
            meter = self._meter(self.scope(livemode, account), meter_id)
            name = _opt_str(params, "display_name")
            if name is not None:
                meter.display_name = name
                meter.updated = self.now()
            return meter.to_json()

    # -- meter events -----------------------------------------------------------
    def create_meter_event(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"event_name", "payload", "identifier", "timestamp", "expand"})
        event_name = _req_str(params, "event_name")
        payload = _sub(params, "payload")
        if not payload:
            raise errors.missing_param("payload")
        payload = {str(k): v for k, v in payload.items()}
        for key, value in payload.items():
            if not isinstance(value, str):
                raise errors.invalid(f"Invalid string: payload[{key}]", param=f"payload[{key}]")
        identifier = _opt_str(params, "identifier")
        if identifier is not None and len(identifier) > 100:
            raise errors.invalid("Invalid identifier: must be at most 100 characters.", param="identifier")
        with self.lock:
            store = self.scope(livemode, account)
            now = self.now()
            if params.get("timestamp") in (None, ""):
                timestamp = now
            else:
                timestamp = _int_param(params["timestamp"], "timestamp")
                if timestamp < now - MAX_EVENT_AGE_SECONDS or timestamp > now + MAX_EVENT_FUTURE_SECONDS:
                    raise errors.invalid(
                        "The timestamp must be within the past 35 calendar days and no more than "
                        f"5 minutes in the future (got {timestamp}, server time {now}).",
                        param="timestamp",
                        code="parameter_invalid_integer",
                    )
            if identifier is None:
                identifier = new_id("", 32)
            existing = store.by_identifier.get(identifier)
            if existing is not None and now - existing.created < IDENTIFIER_UNIQUE_SECONDS:
                raise StripeError(
                    400,
                    "invalid_request_error",
                    f"An event already exists with identifier {identifier}.",
                    code="resource_already_exists",
                    param="identifier",
                    saved=True,
                )
            # Everything else is Stripe's asynchronous validation: 200 now, an error report later.
            verdict = validation.check(store, event_name, payload)
            if verdict.code is not None:
                self._seq += 1
                store.by_identifier[identifier] = MeterEvent(
                    seq=self._seq, identifier=identifier, event_name=event_name, payload=payload,
                    timestamp=timestamp, created=now, livemode=livemode, account=account, meter_id=None,
                    customer=verdict.customer, value=None, source="api")
                self.meter_errors.record(livemode, account, ErrorEntry(
                    verdict.meter.id if verdict.meter else None, verdict.code, verdict.message, identifier, now))
                return {"object": "billing.meter_event", "created": now, "event_name": event_name,
                        "identifier": identifier, "livemode": livemode, "payload": dict(payload),
                        "timestamp": timestamp}
            event = self._store_event(
                store,
                livemode=livemode,
                account=account,
                identifier=identifier,
                event_name=event_name,
                payload=payload,
                timestamp=timestamp,
                meter=verdict.meter,
                customer=verdict.customer,
                value=verdict.value,
                source="api",
            )
            return event.to_json()

    def _store_event(self, store: ScopeStore, *, meter: Meter | None, **kw: Any) -> MeterEvent:
        self._seq += 1
        event = MeterEvent(seq=self._seq, created=self.now(), meter_id=meter.id if meter else None, **kw)
        store.events.append(event)
        store.by_identifier[event.identifier] = event
        for customer in set(event.payload.values()):
            store.by_customer.setdefault((event.event_name, customer), []).append(event)
        return event

    def cancel_by_adjustment(self, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
        _check_params(params, {"event_name", "type", "cancel", "expand"})
        event_name = _req_str(params, "event_name")
        kind = _req_str(params, "type")
        if kind != "cancel":
            raise errors.invalid("Invalid type: must be cancel", param="type")
        cancel = _sub(params, "cancel")
        if cancel is None:
            raise errors.missing_param("cancel")
        identifier = _req_str(cancel, "identifier", label="cancel[identifier]")
        with self.lock:
            store = self.scope(livemode, account)
            now = self.now()
            if self._active_meter(store, event_name) is None:
                raise errors.invalid(
                    f"No active meter was found that matches the event_name '{event_name}'.",
                    param="event_name",
                    code="resource_missing",
                )
            event = store.by_identifier.get(identifier)
            if event is None or event.event_name != event_name:
                raise errors.invalid(
                    f"No meter event with identifier '{identifier}' was found for event_name '{event_name}'.",
                    param="cancel[identifier]",
                    code="resource_missing",
                )
            if event.cancelled_at is None:
                if now - event.created > CANCEL_WINDOW_SECONDS:
                    raise errors.invalid(
                        "Meter events can only be cancelled within 24 hours of Stripe receiving them.",
                        param="cancel[identifier]",
                    )
                event.cancelled_at = now
            return {
                "object": "billing.meter_event_adjustment",
                "cancel": {"identifier": identifier},
                "event_name": event_name,
                "livemode": livemode,
                "status": "pending",
                "type": "cancel",
            }

    # -- summaries ------------------------------------------------------------
    def event_summaries(
        self, livemode: bool, account: str | None, meter_id: str, params: dict[str, Any]
    ) -> dict[str, Any]:
        _check_params(
            params,
            {"customer", "start_time", "end_time", "value_grouping_window", "limit", "starting_after", "ending_before", "expand"},
        )
        customer_id = _req_str(params, "customer")
        if params.get("start_time") in (None, ""):
            raise errors.missing_param("start_time")
        if params.get("end_time") in (None, ""):
            raise errors.missing_param("end_time")
        start = _int_param(params["start_time"], "start_time")
        end = _int_param(params["end_time"], "end_time")
        for name, ts in (("start_time", start), ("end_time", end)):
            if ts % 60:
                raise errors.invalid(f"Invalid {name}: must be aligned with minute boundaries.", param=name)
        if end <= start:
            raise errors.invalid("Invalid end_time: must be after start_time.", param="end_time")
        window = _opt_str(params, "value_grouping_window")
        if window is not None:
            if window not in GROUPING_SECONDS:
                raise errors.invalid("Invalid value_grouping_window: must be one of day, hour", param="value_grouping_window")
            size = GROUPING_SECONDS[window]
            for name, ts in (("start_time", start), ("end_time", end)):
                if ts % size:
                    raise errors.invalid(
                        f"Invalid {name}: must be aligned with {window} boundaries for value_grouping_window={window}.",
                        param=name,
                    )
        else:
            size = end - start
        with self.lock:
            store = self.scope(livemode, account)
            meter = self._meter(store, meter_id)
            if customer_id not in store.customers:
                raise errors.no_such("customer", customer_id, param="customer", status=400)
            n_buckets = (end - start) // size
            picked: list[list[MeterEvent]] = [[] for _ in range(n_buckets)]
            visible_until = self.now() - self.summary_lag_seconds
            for event in store.by_customer.get((meter.event_name, customer_id), ()):
                if (
                    event.cancelled_at is None
                    and event.created <= visible_until
                    and event.event_name == meter.event_name
                    and event.meter_id in (None, meter.id)
                    and event.payload.get(meter.customer_key) == customer_id
                    and start <= event.timestamp < end
                ):
                    picked[(event.timestamp - start) // size].append(event)
            items = []
            for i in reversed(range(n_buckets)):  # newest first
                b_start = start + i * size
                b_end = b_start + size
                items.append(
                    {
                        "id": _summary_id(meter.id, customer_id, b_start, b_end),
                        "object": "billing.meter_event_summary",
                        "aggregated_value": _aggregate(meter, picked[i]),
                        "end_time": b_end,
                        "livemode": livemode,
                        "meter": meter.id,
                        "start_time": b_start,
                    }
                )
            return paginate(items, params, f"/v1/billing/meters/{meter.id}/event_summaries")

    # -- hooks on meter events --------------------------------------------------
    def list_events(
        self, livemode: bool = False, account: str | None = None, *, include_cancelled: bool = True
    ) -> list[dict[str, Any]]:
        with self.lock:
            return [
                e.to_hook_json()
                for e in self.scope(livemode, account).events
                if include_cancelled or e.cancelled_at is None
            ]

    def add_event(
        self,
        event_name: str,
        customer: str,
        value: int | None,
        *,
        livemode: bool = False,
        account: str | None = None,
        timestamp: int | None = None,
        identifier: str | None = None,
        payload: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Test hook: usage that exists on the Stripe side only, with no validation at all."""
        with self.lock:
            store = self.scope(livemode, account)
            meter = self._active_meter(store, event_name)
            customer_key = meter.customer_key if meter else "stripe_customer_id"
            value_key = meter.value_key if meter else "value"
            full_payload = {customer_key: customer}
            if value is not None:
                full_payload[value_key] = str(int(value))
            full_payload.update(payload or {})
            event = self._store_event(
                store,
                livemode=livemode,
                account=account,
                identifier=identifier or new_id("", 32),
                event_name=event_name,
                payload=full_payload,
                timestamp=self.now() if timestamp is None else int(timestamp),
                meter=meter,
                customer=customer,
                value=None if value is None else int(value),
                source="emulator",
            )
            return event.to_hook_json()

    def delete_event(self, identifier: str, *, livemode: bool = False, account: str | None = None) -> int:
        """Test hook: usage missing on the Stripe side. Returns how many events were removed.
        The identifier is forgotten too (a re-send with it is accepted), but idempotency
        records are kept, exactly as Stripe would."""
        with self.lock:
            store = self.scope(livemode, account)
            before = len(store.events)
            store.events = [e for e in store.events if e.identifier != identifier]
            store.by_identifier.pop(identifier, None)
            for key, events in store.by_customer.items():
                store.by_customer[key] = [e for e in events if e.identifier != identifier]
            return before - len(store.events)

    def cancel_event(self, identifier: str, *, livemode: bool = False, account: str | None = None) -> bool:
        """Test hook: cancel an event with no window check (as if adjusted on Stripe's side)."""
        with self.lock:
            event = self.scope(livemode, account).by_identifier.get(identifier)
            if event is None:
                return False
            if event.cancelled_at is None:
                event.cancelled_at = self.now()
            return True


def _aggregate(meter: Meter, events: list[MeterEvent]) -> int:
    # Exact integer arithmetic: totals can exceed float precision.
    formula = meter.formula
    if meter.event_time_window is not None:
        # Pre-aggregated meters keep only the most recent event of each hour/day window: "A newer
        # event sent within the same hourly or daily window overwrites the previous one."
        # (https://docs.stripe.com/billing/subscriptions/usage-based/recording-usage)
        size = GROUPING_SECONDS[meter.event_time_window]
        latest: dict[int, MeterEvent] = {}
        for e in events:
            bucket = e.timestamp // size
            if bucket not in latest or (e.timestamp, e.seq) > (latest[bucket].timestamp, latest[bucket].seq):
                latest[bucket] = e
        events = list(latest.values())
    if not events:
        return 0
    if formula == "count":
        return len(events)
    if formula == "last":
        latest = max(events, key=lambda e: (e.timestamp, e.seq))
        return latest.value or 0
    return sum(e.value or 0 for e in events)


def _deleted_customer(customer_id: str) -> dict[str, Any]:
    return {"id": customer_id, "object": "customer", "deleted": True}


def _summary_id(meter_id: str, customer: str, start: int, end: int) -> str:
    digest = hashlib.sha256(f"{meter_id}|{customer}|{start}|{end}".encode()).hexdigest()[:24]
    return "mtrusg_" + digest
