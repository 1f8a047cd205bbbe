"""`Idempotency-Key` answers, kept durably for replay (DESIGN §7).

The first answer to a (bearer key, Idempotency-Key) pair is stored in SQLite
with `synchronous=FULL` before it is sent, so a client that retries after a
lost answer, even across a server restart, gets the same answer and no
second landing file. Answers expire after `api.idempotency_hours` (24 h).
The events themselves never rely on this store: their idempotency keys (or
the derived keys the ingest gives keyless events) dedupe them in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    scope      TEXT PRIMARY KEY,  -- sha256(key digest, Idempotency-Key)
    body_hash  TEXT NOT NULL,     -- sha256 of the request body
    status     INTEGER NOT NULL,
    answer     BLOB NOT NULL,     -- the JSON answer as sent
    created_at REAL NOT NULL      -- epoch seconds
)
"""


@dataclass(frozen=True)
class Stored:
    body_hash: str
    status: int
    answer: bytes


def scope_of(key_digest: str, idempotency_key: str) -> str:
    return hashlib.sha256(f"{key_digest}\x1f{idempotency_key}".encode()).hexdigest()


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class IdempotencyStore:
    def __init__(self, path: str, ttl_hours: float = 24.0):
        self.ttl_seconds = ttl_hours * 3600
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # One connection shared by the server's worker threads, guarded by a lock.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(_SCHEMA)
        self._lock = threading.Lock()
        self._last_purge = 0.0

    def get(self, scope: str) -> Stored | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body_hash, status, answer FROM answers WHERE scope = ? AND created_at > ?",
                (scope, time.time() - self.ttl_seconds)).fetchone()
        return Stored(*row) if row else None

    def put(self, scope: str, body_hash: str, status: int, answer: bytes) -> None:
        now = time.time()
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                               (scope, body_hash, status, answer, now))
            if now - self._last_purge > 600:
                self._conn.execute("DELETE FROM answers WHERE created_at <= ?", (now - self.ttl_seconds,))
                self._last_purge = now

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class KeyedLocks:
    """One asyncio lock per key, dropped once nobody holds or awaits it: a
    concurrent retry with the same Idempotency-Key waits for the first
    answer instead of writing a second file. (One event loop: no races.)"""

    def __init__(self) -> None:
        self._entries: dict[str, list] = {}  # key -> [lock, holders and waiters]

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._entries.setdefault(key, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._entries[key]
