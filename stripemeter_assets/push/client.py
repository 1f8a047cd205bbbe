"""The Stripe side of the push: keys from the environment, a thin gateway
over the official SDK's `StripeClient`, and errors sorted into what the
sender does with them. Keys are read at call time, never stored in config,
never put into messages: every error text passes through `scrub`."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

import stripe

from stripemeter_assets import settings

# Secret, restricted and publishable keys, webhook secrets; the tail is
# matched greedily so a whole key goes even when it carries odd characters.
_KEY_PATTERN = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[^\s'\"<>,;)\]}]*|\bwhsec_[^\s'\"<>,;)\]}]*")
_ALREADY_EXISTS = "An event already exists with identifier"
IDEMPOTENCY_KEY_IN_USE = "idempotency_key_in_use"


def scrub(text: object) -> str:
    """`text` with anything shaped like a Stripe key, and the configured keys
    themselves, replaced by a marker."""
    out = str(text)
    for key in settings.stripe_keys_set():
        if len(key) >= 8:
            out = out.replace(key, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", out)


def key_mode(key: str | None) -> str | None:
    """live / test from the key's prefix; None for no key or an unknown shape."""
    if not key:
        return None
    if key.startswith(("sk_live_", "rk_live_")):
        return "live"
    if key.startswith(("sk_test_", "rk_test_")):
        return "test"
    return None


@dataclass(frozen=True)
class KeyStatus:
    """Which keys the environment holds, and their modes (never the keys)."""

    primary_present: bool
    primary_mode: str | None      # mode of STRIPE_API_KEY
    test_present: bool            # STRIPE_TEST_API_KEY set and really a test-mode key
    test_rejected: bool           # STRIPE_TEST_API_KEY set but not a test key (fail closed)

    @classmethod
    def from_env(cls) -> KeyStatus:
        primary = settings.stripe_live_key()
        test = settings.stripe_test_key()
        return cls(primary_present=primary is not None, primary_mode=key_mode(primary) or ("live" if primary else None),
                   test_present=key_mode(test) == "test", test_rejected=test is not None and key_mode(test) != "test")


def read_key(shadow: bool) -> str | None:
    """The key for a push: shadow mappings only ever get the test-mode key."""
    if shadow:
        key = settings.stripe_test_key()
        return key if key_mode(key) == "test" else None
    return settings.stripe_live_key()


class PushCallError(Exception):
    """A Stripe call that did not succeed; `message` is scrubbed. kind:
    retryable (429, 5xx, connection, a 409 for a key still in use), fatal
    (Stripe refused this request for good), abort (the key or account is
    refused: stop sending to that account)."""

    def __init__(self, kind: str, message: str, status: int | None = None, code: str | None = None,
                 should_retry: bool | None = None):
        super().__init__(scrub(message))
        self.kind = kind
        self.status = status
        self.code = code
        # Stripe's `Stripe-Should-Retry` header, when it sent one
        # (https://docs.stripe.com/error-low-level#server-errors).
        self.should_retry = should_retry

    @property
    def key_in_use(self) -> bool:
        """The same idempotency key is still being processed: the first
        request may yet succeed, so only the same key may be retried."""
        return self.status == 409 and self.code == IDEMPOTENCY_KEY_IN_USE

    @property
    def saved_server_error(self) -> bool:
        """Stripe saves a 5xx under the idempotency key and replays it for
        24 h (https://docs.stripe.com/api/idempotent_requests): a retry needs
        a fresh key (the event identifier still dedupes)."""
        return self.status is not None and self.status >= 500


@dataclass(frozen=True)
class MeterInfo:
    """A Stripe meter, as far as the push cares."""

    id: str
    event_name: str
    status: str
    formula: str
    event_time_window: str | None
    customer_key: str
    value_key: str


class AlreadyExists(Exception):
    """Stripe already has a meter event with this identifier: delivered."""


def classify(exc: stripe.StripeError) -> PushCallError | AlreadyExists:
    status = getattr(exc, "http_status", None)
    # stripe-python 16 raises a v1 409 as APIError with `code` unset; the code
    # is only in the error object (`_api_requestor.specific_v1_api_error`).
    code = getattr(exc, "code", None) or getattr(getattr(exc, "error", None), "code", None)
    text = f"{type(exc).__name__}: {exc.user_message or ''}".strip()
    header = str((getattr(exc, "headers", None) or {}).get("stripe-should-retry", "")).lower()
    hint = {"true": True, "false": False}.get(header)
    if isinstance(exc, stripe.InvalidRequestError) and (exc.user_message or "").startswith(_ALREADY_EXISTS):
        return AlreadyExists()
    if isinstance(exc, (stripe.RateLimitError, stripe.APIConnectionError)):
        return PushCallError("retryable", text, status, code, hint)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return PushCallError("abort", text, status, code)
    if status == 409 and code == IDEMPOTENCY_KEY_IN_USE:  # matched on status and code, whatever the class
        return PushCallError("retryable", text, status, code, hint)
    if status is not None and (status >= 500 or status == 429):
        return PushCallError("retryable", text, status, code, hint)
    if status == 403:
        return PushCallError("abort", text, status, code)
    return PushCallError("fatal", text, status, code)


class ScrubFilter(logging.Filter):
    """Scrubs key material from log records. The SDK logs response bodies,
    and an error body may quote the key back."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_scrubber() -> None:
    """On the SDK's logger (idempotent). Its console echo (`STRIPE_LOG`)
    bypasses logging: leave STRIPE_LOG unset where keys matter."""
    logger = logging.getLogger("stripe")
    if not any(isinstance(f, ScrubFilter) for f in logger.filters):
        logger.addFilter(ScrubFilter())


def make_client(api_key: str, api_base: str | None, account: str | None, timeout: float) -> stripe.StripeClient:
    """A StripeClient that never retries by itself: the sender owns retries,
    pacing and backoff (the SDK does not retry 429 rate_limit anyway)."""
    install_log_scrubber()
    kwargs: dict[str, Any] = {
        "stripe_account": account,
        "max_network_retries": 0,
        "http_client": stripe.RequestsClient(timeout=timeout),
    }
    if api_base:
        kwargs["base_addresses"] = {"api": api_base}
    return stripe.StripeClient(api_key, **kwargs)


class CallCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1


class Gateway:
    """Stripe calls for one (key, account). The key lives only inside the
    SDK client; repr and errors never show it."""

    def __init__(self, mode: str, account: str | None, client: stripe.StripeClient, calls: CallCounter):
        self.mode = mode
        self.account = account
        self._client = client
        self._calls = calls

    def __repr__(self) -> str:
        return f"Gateway(mode={self.mode!r}, account={self.account or 'platform'!r})"

    def _call(self, fn: Any, *args: Any) -> Any:
        self._calls.add()
        try:
            return fn(*args)
        except stripe.StripeError as exc:
            outcome = classify(exc)
        raise outcome  # outside the except block: no chained SDK exception

    def create_meter_event(self, *, identifier: str, event_name: str, timestamp: int, customer: str,
                           value: int, idempotency_key: str | None = None,
                           customer_key: str = "stripe_customer_id", value_key: str = "value") -> None:
        """`customer_key`/`value_key`: the meter's `customer_mapping` and
        `value_settings` payload keys."""
        params = {
            "event_name": event_name,
            "identifier": identifier,
            "timestamp": timestamp,
            "payload": {customer_key: customer, value_key: str(value)},
        }
        self._call(self._client.v1.billing.meter_events.create, params,
                   {"idempotency_key": idempotency_key or identifier})

    def meters(self) -> list[MeterInfo]:
        """Every meter of the account, active or not (paged)."""
        out: list[MeterInfo] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            page = self._call(self._client.v1.billing.meters.list, dict(params))
            for m in page.data:
                out.append(MeterInfo(m.id, m.event_name, m.status, m.default_aggregation.formula,
                                     m.event_time_window, m.customer_mapping.event_payload_key,
                                     m.value_settings.event_payload_key))
            if not page.has_more or not page.data:
                return out
            params["starting_after"] = page.data[-1].id

    def customer_exists(self, customer: str) -> bool:
        """False for a customer Stripe does not know (404) or has deleted."""
        try:
            found = self._call(self._client.v1.customers.retrieve, customer)
        except PushCallError as exc:
            if exc.status == 404:
                return False
            raise
        return not getattr(found, "deleted", False)

    def error_reports(self, *, object_id: str | None = None, types: list[str] | None = None,
                      created_from: str | None = None, pace: Any = lambda: None) -> list[Any]:
        """Stripe's v2 events (newest first) for `object_id`, each retrieved
        for its `data`: listed events are thin ("you must fetch the versioned
        event from the API", https://docs.stripe.com/api/v2/events/event-types)."""
        params: dict[str, Any] = {"limit": 100}
        if object_id:
            params["object_id"] = object_id
        if types:
            params["types"] = types
        if created_from:
            params["created"] = {"gte": created_from}
        pace()
        first = self._call(self._client.v2.core.events.list, params)
        thin = self._call(lambda: list(first.auto_paging_iter()))  # follows next_page_url
        full = []
        for event in thin:
            pace()
            full.append(self._call(self._client.v2.core.events.retrieve, event.id))
        return full

    def meter_id_for(self, event_name: str) -> str | None:
        """The active meter with this event name (one list call per page)."""
        page = self._call(self._client.v1.billing.meters.list, {"status": "active", "limit": 100})
        while True:
            for meter in page.data:
                if meter.event_name == event_name:
                    return meter.id
            if not page.has_more or not page.data:
                return None
            page = self._call(self._client.v1.billing.meters.list,
                              {"status": "active", "limit": 100, "starting_after": page.data[-1].id})

    def summary_total(self, meter_id: str, customer: str, start: int, end: int) -> int:
        """Stripe's aggregated value for [start, end), minute-aligned."""
        page = self._call(self._client.v1.billing.meters.event_summaries.list, meter_id,
                          {"customer": customer, "start_time": start, "end_time": end})
        return sum(int(item.aggregated_value) for item in page.data)


class GatewayFactory:
    """Gateways for one run, keyed by (key, account). Keys are read from the
    environment here, when a gateway is first needed, and live only inside
    the SDK clients."""

    def __init__(self, api_base: str | None = None, timeout: float = 30.0):
        self.api_base = api_base
        self.timeout = timeout
        self.calls = CallCounter()
        self._cache: dict[tuple[bool, str | None], Gateway] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GatewayFactory(api_base={self.api_base!r})"

    def __call__(self, mode: str, account: str | None, shadow: bool) -> Gateway | None:
        """The gateway for an intent of `mode`, or None when no key of that
        mode is configured for it (a shadow intent never gets the live key)."""
        key = read_key(shadow)
        if key is None or (key_mode(key) or "live") != mode:
            return None
        with self._lock:
            gateway = self._cache.get((shadow, account))
            if gateway is None:
                gateway = Gateway(mode, account, make_client(key, self.api_base, account, self.timeout), self.calls)
                self._cache[(shadow, account)] = gateway
            return gateway
