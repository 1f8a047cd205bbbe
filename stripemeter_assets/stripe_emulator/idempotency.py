"""Idempotency keys still being processed.

Stripe answers a request whose ``Idempotency-Key`` belongs to a request that is still
executing with 409 ``idempotency_key_in_use`` and saves nothing for it: "If incoming
parameters fail validation, or the request conflicts with another request that's executing
concurrently, we don't save the idempotent result"
(https://docs.stripe.com/api/idempotent_requests, https://docs.stripe.com/error-low-level#idempotency).
A client that timed out and retried while the first request is still running gets this 409,
and the first request may still succeed afterwards.
"""

from __future__ import annotations

import threading
from typing import Any


class KeysInFlight:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[tuple[Any, ...]] = set()

    def begin(self, livemode: bool, account: str | None, key: str) -> bool:
        """Marks the key as executing; False when another request already holds it."""
        with self._lock:
            entry = (livemode, account, key)
            if entry in self._keys:
                return False
            self._keys.add(entry)
            return True

    def end(self, livemode: bool, account: str | None, key: str) -> None:
        with self._lock:
            self._keys.discard((livemode, account, key))

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()
