"""Pacing under Stripe's documented rate limits, retry backoff, and a breaker
that stops hammering Stripe when it keeps failing.

Documented limits (requests per second): live mode 100 for the API in
general and, separately, 1000 for meter events; test mode 25 for everything,
meter events included. We stay under `fraction` (80 %) of them.
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


class Pacer:
    """Buckets per key mode: test mode shares one bucket for every call;
    live mode has one for meter events and one for everything else."""

    def __init__(self, enabled: bool = True, fraction: float = DEFAULT_FRACTION):
        self.enabled = enabled
        test = TokenBucket.for_limit(TEST_TOTAL_RPS, fraction)
        self._buckets = {
            ("test", "meter_events"): test,
            ("test", "general"): test,
            ("live", "meter_events"): TokenBucket.for_limit(LIVE_METER_EVENTS_RPS, fraction),
            ("live", "general"): TokenBucket.for_limit(LIVE_GENERAL_RPS, fraction),
        }

    def acquire(self, mode: str, kind: str) -> None:
        if self.enabled:
            self._buckets[(mode, kind)].acquire()


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
    nothing and leaves its intents pending for the next run."""

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
