"""Injected faults and the rate limiter.

A fault applies to the next ``count`` API requests whose method matches and whose path
starts with ``path_prefix`` (optionally only for one mode/account), in the order faults
were added. Kinds:

- ``rate_limit``       429, code ``rate_limit`` (no Retry-After, no Stripe-Should-Retry: like
                       Stripe, so the SDK does not retry it by itself)
- ``lock_timeout``     429 (or ``status``), code ``lock_timeout``, ``Stripe-Should-Retry: true``
- ``api_error``        500 (or ``status``: 502/503/504), type ``api_error``; saved under the
                       request's idempotency key and replayed for that key, as Stripe does
                       (https://docs.stripe.com/api/idempotent_requests): a retry must use a
                       fresh key
- ``idempotency_conflict``  409, code ``idempotency_key_in_use``; the SDK retries it
- ``drop``             the connection is closed without a response; nothing is applied
- ``accept_then_drop`` the request is applied (and its idempotency result saved), then the
                       connection is closed without a response
- ``delay``            sleeps ``delay`` seconds, then handles the request normally

Other injected error responses are not saved as idempotency results (Stripe saves nothing
for rate limiting, lock timeouts or conflicts), so a retry with the same key executes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

KINDS = ("rate_limit", "lock_timeout", "api_error", "idempotency_conflict", "drop", "accept_then_drop", "delay")
ALIASES = {"429": "rate_limit", "500": "api_error", "409": "idempotency_conflict", "timeout": "delay"}


@dataclass
class Fault:
    id: int
    kind: str
    method: str | None  # None: any method
    path_prefix: str
    remaining: int
    status: int | None = None
    delay: float = 0.0
    should_retry: bool | None = None  # sets Stripe-Should-Retry on error faults
    livemode: bool | None = None
    account: str | None = None  # None: any account; "platform" only the platform

    def matches(self, method: str, path: str, livemode: bool, account: str | None) -> bool:
        if self.remaining <= 0:
            return False
        if self.method is not None and self.method != method.upper():
            return False
        if not path.startswith(self.path_prefix):
            return False
        if self.livemode is not None and self.livemode != livemode:
            return False
        if self.account is not None and self.account != (account or "platform"):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(
        self,
        kind: str,
        *,
        method: str | None = "POST",
        path_prefix: str = "/v1/",
        count: int = 1,
        status: int | None = None,
        delay: float = 0.0,
        should_retry: bool | None = None,
        livemode: bool | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        kind = ALIASES.get(str(kind), str(kind))
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if int(count) < 1:
            raise ValueError("count must be >= 1")
        if status is not None and not 400 <= int(status) <= 599:
            raise ValueError("status must be an HTTP error status")
        with self._lock:
            fault = Fault(
                id=next(self._ids),
                kind=kind,
                method=method.upper() if method else None,
                path_prefix=path_prefix,
                remaining=int(count),
                status=None if status is None else int(status),
                delay=float(delay),
                should_retry=should_retry,
                livemode=livemode,
                account=account,
            )
            self._faults.append(fault)
            return fault.to_json()

    def take(self, method: str, path: str, livemode: bool, account: str | None) -> Fault | None:
        """The first pending fault for this request, consuming one of its occurrences."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, livemode, account):
                    fault.remaining -= 1
                    return Fault(**{**asdict(fault), "remaining": fault.remaining})
            return None

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults if f.remaining > 0]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


# Stripe's documented limits, requests per second per account (https://docs.stripe.com/rate-limits):
# live 100 (basic), live meter events on the platform 1000 (a separate limit, not counted in the
# basic one), sandbox/test 25 for everything. Meter events on a connected account count toward
# that account's basic limit (DESIGN §4).
LIVE_BASIC_RPS = 100
LIVE_METER_EVENTS_RPS = 1000
TEST_RPS = 25


def stripe_limit(livemode: bool, account: str | None, meter_event: bool) -> tuple[str, int]:
    if not livemode:
        return "basic", TEST_RPS
    if meter_event and account is None:
        return "meter_events", LIVE_METER_EVENTS_RPS
    return "basic", LIVE_BASIC_RPS


class RateLimiter:
    """Stripe's limits per mode and per account (on by default), optional flat overrides per
    mode (``live``/``test`` requests per second, for tests and benchmarks), and optionally
    Stripe's "one concurrent meter event call per customer per meter". Sliding one-second
    windows of ``clock`` (real time)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._lock = threading.Lock()
        self.clock = clock
        self.configure()

    def configure(
        self,
        *,
        stripe_limits: bool = True,
        live: int | None = None,
        test: int | None = None,
        meter_event_concurrency: bool = False,
    ) -> dict[str, Any]:
        with self._lock:
            self.stripe_limits = bool(stripe_limits)
            self.limits: dict[bool, int | None] = {True: live, False: test}
            self.meter_event_concurrency = bool(meter_event_concurrency)
            self._windows: dict[tuple[Any, ...], deque[float]] = {}
            self._in_flight: set[tuple[Any, ...]] = set()
            return self._json()

    def _json(self) -> dict[str, Any]:
        return {"stripe_limits": self.stripe_limits, "live": self.limits[True], "test": self.limits[False],
                "meter_event_concurrency": self.meter_event_concurrency}

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return self._json()

    def allow(self, livemode: bool, account: str | None = None, meter_event: bool = False) -> bool:
        with self._lock:
            override = self.limits[livemode]
            if override:
                key: tuple[Any, ...] = (livemode, "override")
                limit = override
            elif self.stripe_limits:
                name, limit = stripe_limit(livemode, account, meter_event)
                key = (livemode, account, name)
            else:
                return True
            now = self.clock()
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def enter(self, key: tuple[Any, ...]) -> bool:
        with self._lock:
            if not self.meter_event_concurrency:
                return True
            if key in self._in_flight:
                return False
            self._in_flight.add(key)
            return True

    def leave(self, key: tuple[Any, ...]) -> None:
        with self._lock:
            self._in_flight.discard(key)
