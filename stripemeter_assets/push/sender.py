"""Sending intents: one meter event per intent, with the intent's identifier
as both the event identifier and the idempotency key, paced, retried with
backoff, and at most one call in flight per (customer, meter).

Intents of one (mode, account, meter, customer) go in order on one worker;
different ones may run in parallel on a small pool. Outcomes come back to
the caller's thread (the only one touching DuckDB) through `on_outcomes`,
in batches, so acknowledgements are stored while sending goes on.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from stripemeter_assets import settings
from stripemeter_assets.push.client import AlreadyExists, Gateway, PushCallError, scrub
from stripemeter_assets.push.meter_check import Preflight, Refusal
from stripemeter_assets.push.outbox import Intent, Outcome
from stripemeter_assets.push.pacing import Breaker, Pacer, RetryPolicy

GatewayFor = Callable[[str, str | None, bool], "Gateway | None"]


class Sender:
    def __init__(self, gateway_for: GatewayFor, *, pacer: Pacer, policy: RetryPolicy, workers: int = 4,
                 sleep: Callable[[float], None] = time.sleep, flush_every: int = 200, flush_seconds: float = 0.5):
        self.gateway_for = gateway_for
        self.pacer = pacer
        self.policy = policy
        self.workers = max(1, workers)
        # One breaker per (mode, account): an account Stripe refuses (403) or
        # that keeps failing is skipped; the other accounts are still pushed.
        self.breakers: dict[tuple[str, str], Breaker] = defaultdict(Breaker)
        self.sleep = sleep
        self.flush_every = flush_every
        self.flush_seconds = flush_seconds
        self.retries = 0
        self.preflight = Preflight(lambda gateway: self.pacer.acquire(gateway.mode, "general", gateway.account))
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def send(self, intents: list[Intent], on_outcomes: Callable[[list[Outcome]], None]) -> None:
        groups: dict[tuple, list[Intent]] = defaultdict(list)
        for intent in intents:
            groups[(intent.mode, intent.account, intent.event_name, intent.stripe_customer)].append(intent)
        for group in groups.values():
            group.sort(key=lambda i: (i.period_start, i.revision))
        results: queue.Queue[Outcome] = queue.Queue()
        remaining = len(intents)
        with ThreadPoolExecutor(max_workers=min(self.workers, max(len(groups), 1)),
                                thread_name_prefix="stripe-push") as pool:
            futures = [pool.submit(self._send_group, g, results) for g in groups.values()]
            try:
                self._collect(results, futures, remaining, on_outcomes)
            except BaseException:
                self._stop.set()  # what was sent stays pending: re-sent, same identifier, next run
                raise
            for f in futures:
                f.result()  # a worker bug surfaces here, after every outcome so far was stored

    def _collect(self, results: queue.Queue, futures: list, remaining: int,
                 on_outcomes: Callable[[list[Outcome]], None]) -> None:
        batch: list[Outcome] = []
        last_flush = time.monotonic()
        while remaining:
            try:
                batch.append(results.get(timeout=0.05))
                remaining -= 1
            except queue.Empty:
                if all(f.done() for f in futures) and results.empty():
                    break  # a worker died; its exception is raised by the caller
            if batch and (len(batch) >= self.flush_every or not remaining
                          or time.monotonic() - last_flush >= self.flush_seconds):
                on_outcomes(batch)
                batch, last_flush = [], time.monotonic()
        if batch:
            on_outcomes(batch)

    def _send_group(self, group: list[Intent], results: queue.Queue) -> None:
        for intent in group:
            if self._stop.is_set():
                return
            results.put(self.send_one(intent))

    def breaker(self, intent: Intent) -> Breaker:
        with self._lock:
            return self.breakers[(intent.mode, intent.account)]

    def skipped_accounts(self) -> dict[tuple[str, str], str]:
        """(mode, account) whose breaker opened, with the reason."""
        with self._lock:
            return {k: b.open_reason for k, b in self.breakers.items() if b.open_reason}

    def send_one(self, intent: Intent) -> Outcome:
        breaker = self.breaker(intent)
        reason = breaker.open_reason
        if reason:
            return Outcome(intent.identifier, "pending", note=f"not sent: account {intent.account} skipped: {reason}")
        gateway = self.gateway_for(intent.mode, intent.stripe_account, intent.shadow)
        if gateway is None:
            return Outcome(intent.identifier, "pending", note="not sent: no key of this intent's mode is configured")
        checks = 0
        while True:
            checks += 1
            try:
                verdict = self.preflight.check(gateway, event_name=intent.event_name, formula=intent.meter_formula,
                                               meter_id=intent.meter_id, customer=intent.stripe_customer)
                break
            except PushCallError as exc:
                if exc.kind == "abort":
                    breaker.trip(str(exc))
                if exc.kind != "retryable" or checks >= self.policy.max_attempts or exc.should_retry is False:
                    return Outcome(intent.identifier, "pending", note=scrub(f"not sent: could not check the meter "
                                                                             f"and customer: {exc}"))
                self.sleep(self.policy.delay(checks))
        if isinstance(verdict, Refusal):
            return Outcome(intent.identifier, verdict.status, note=verdict.reason)
        attempts = 0
        first: datetime | None = None
        key = intent.identifier  # the idempotency key; the identifier never changes
        while True:
            self.pacer.acquire(intent.mode, "meter_events", intent.stripe_account)
            attempts += 1
            first = first or settings.now()
            try:
                gateway.create_meter_event(identifier=intent.identifier, event_name=intent.event_name,
                                           timestamp=intent.event_ts, customer=intent.stripe_customer,
                                           value=intent.value, idempotency_key=key,
                                           customer_key=verdict.customer_key, value_key=verdict.value_key)
                note = None
            except AlreadyExists:
                note = "Stripe already had this identifier"
            except PushCallError as exc:
                if exc.kind == "abort":
                    breaker.trip(str(exc))
                    return Outcome(intent.identifier, "pending", attempts, first, note=str(exc))
                if exc.kind == "fatal":
                    return Outcome(intent.identifier, "failed", attempts, first, note=str(exc))
                if attempts >= self.policy.max_attempts or breaker.open_reason or exc.should_retry is False:
                    breaker.exhausted(str(exc))
                    return Outcome(intent.identifier, "pending", attempts, first,
                                   note=scrub(f"after {attempts} attempts: {exc}"))
                with self._lock:
                    self.retries += 1
                if exc.saved_server_error:
                    # The 5xx is replayed for this key for 24 h; a fresh key
                    # runs again and the identifier still dedupes.
                    key = f"{intent.identifier}-{uuid.uuid4().hex[:16]}"
                self.sleep(self.policy.delay(attempts))
                continue
            breaker.success()
            return Outcome(intent.identifier, "acknowledged", attempts, first, settings.now(), note)
