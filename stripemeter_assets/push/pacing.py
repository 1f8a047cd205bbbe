"""Pacing under Stripe's documented rate limits, retry backoff, and a breaker
that stops hammering Stripe when it keeps failing.

Documented limits (requests per second, per Stripe account,
https://docs.stripe.com/rate-limits): live mode 100 for the API in general
and, on the platform, separately 1000 for meter events; meter events made on
a connected account (`Stripe-Account`) count toward that account's basic
limit (DESIGN §4); test mode (sandbox) 25 for everything, meter events
included. Every account has its own buckets. We stay under `fraction`
(80 %) of the limits.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

LIVE_GENERAL_RPS = 100
LIVE_METER_EVENTS_RPS = 1000
TEST_TOTAL_RPS = 25
DEFAULT_FRACTION = 0.8


class TokenBucket:
    """Thread-safe token bucket. With capacity c and rate r, any one-second
    window sees at most r + c calls, so `for_limit` sets r = fraction·limit − c."""

    def __init__(self, rate: float, capacity: float = 1.0, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = capacity
        self._tokens = capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    @classmethod
    def for_limit(cls, limit: float, fraction: float = DEFAULT_FRACTION, **kw) -> TokenBucket:
        capacity = 1.0
        return cls(max(fraction * limit - capacity, 0.5), capacity, **kw)

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1.0 - 1e-9:  # float dust must not turn into a zero-length wait
                    self._tokens = max(self._tokens - 1.0, 0.0)
                    return
                wait = (1.0 - self._tokens) / self.rate
            self._sleep(wait)


def limit_key(mode: str, account: str | None, kind: str) -> tuple[str, str, str]:
    """Which of Stripe's limits a call counts toward: (mode, account, limit)."""
    account = account or "platform"
    if mode == "live" and kind == "meter_events" and account == "platform":
        return (mode, account, "meter_events")
    return (mode, account, "basic")


def limit_rps(key: tuple[str, str, str]) -> int:
    mode, _, limit = key
    if mode == "test":
        return TEST_TOTAL_RPS
    return LIVE_METER_EVENTS_RPS if limit == "meter_events" else LIVE_GENERAL_RPS


class Pacer:
    """One token bucket per (mode, account, limit): a connected account's
    meter events share its basic bucket; the platform's live meter events
    have their own."""

    def __init__(self, enabled: bool = True, fraction: float = DEFAULT_FRACTION, **bucket_kw):
        self.enabled = enabled
        self.fraction = fraction
        self._bucket_kw = bucket_kw
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, mode: str, kind: str, account: str | None = None) -> TokenBucket:
        key = limit_key(mode, account, kind)
        with self._lock:
            if key not in self._buckets:
                self._buckets[key] = TokenBucket.for_limit(limit_rps(key), self.fraction, **self._bucket_kw)
            return self._buckets[key]

    def acquire(self, mode: str, kind: str, account: str | None = None) -> None:
        if self.enabled:
            self.bucket(mode, kind, account).acquire()


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff and "equal" jitter: the n-th
    wait lies in [d/2, d] with d = min(cap, base · 2^(n−1))."""

    max_attempts: int = 6
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        d = min(self.max_seconds, self.base_seconds * (2 ** max(attempt - 1, 0)))
        return d / 2 + (rng or random).uniform(0, d / 2)


class Breaker:
    """Opens after `threshold` intents in a row exhausted their retries (or
    at once on an auth/permission refusal); the rest of the run then sends
    nothing through it and leaves those intents pending for the next run.
    The sender keeps one per (mode, account): one unreachable account never
    stops the others."""

    def __init__(self, threshold: int = 3):
        self.threshold = threshold
        self._failures = 0
        self._open_reason: str | None = None
        self._lock = threading.Lock()

    @property
    def open_reason(self) -> str | None:
        return self._open_reason

    def success(self) -> None:
        with self._lock:
            self._failures = 0

    def exhausted(self, reason: str) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold and self._open_reason is None:
                self._open_reason = f"{self._failures} intents in a row failed after all retries; last: {reason}"

    def trip(self, reason: str) -> None:
        with self._lock:
            if self._open_reason is None:
                self._open_reason = reason
