"""Bearer keys and per-key rate limits.

Config holds only each key's SHA-256 (`api.keys`), so a leaked config file
grants nothing. A presented key is hashed and compared with every configured
digest in constant time; the key itself is never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from stripemeter_assets.settings import ApiConfig, ApiKey


class AuthError(Exception):
    """401 (no or unknown key) or 403 (a tenant the key may not use)."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limit exceeded; retry after {retry_after} s")
        self.retry_after = retry_after


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """The caller: which configured key (by digest) and its tenants."""

    digest: str
    tenants: frozenset[str]

    def require(self, tenants: Iterable[str]) -> None:
        denied = sorted(set(tenants) - self.tenants)
        if denied:
            raise AuthError(403, f"this key may not use tenant {denied[0]!r}")


class Authenticator:
    def __init__(self, keys: Iterable[ApiKey]):
        self._keys = [(bytes.fromhex(k.sha256), k) for k in keys]

    def principal(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "missing bearer key (Authorization: Bearer <key>)")
        presented = hashlib.sha256(token.strip().encode("utf-8")).digest()
        found = None
        # Every digest is compared, so the time taken says nothing about
        # which key (or how much of one) matched.
        for digest, key in self._keys:
            if hmac.compare_digest(presented, digest):
                found = key
        if found is None:
            raise AuthError(401, "unknown key")
        return Principal(digest=found.sha256, tenants=found.tenants)


class RateLimiter:
    """A token bucket per key: `rate` requests per second sustained, bursts of `burst`."""

    def __init__(self, config: ApiConfig, clock=time.monotonic):
        self.rate = config.rate_limit_per_second
        self.burst = config.rate_limit_burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, digest: str) -> None:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(digest, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._buckets[digest] = (tokens, now)
                raise RateLimited(max(1, math.ceil((1 - tokens) / self.rate)))
            self._buckets[digest] = (tokens - 1, now)
