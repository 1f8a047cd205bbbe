"""Stripe's side: meter event summaries over a counter's period window.

Keys, clients and error sorting are the push's own (`push.client`): the key
is read from the environment when a client is first needed, a shadow
mapping only ever gets the test-mode key, and every error text is scrubbed.
Calls go through the push's `Pacer` (under 80 % of Stripe's limits), with
bounded retries on 429/5xx/connection errors; summaries are paged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import stripe

from stripemeter_assets.push.client import (
    AlreadyExists,
    PushCallError,
    classify,
    key_mode,
    make_client,
    read_key,
    scrub,
)
from stripemeter_assets.push.pacing import Pacer, RetryPolicy
from stripemeter_assets.settings import epoch

PAGE_LIMIT = 100
MINUTE = 60


def aligned_window(period_start: datetime, period_end: datetime, now: datetime) -> tuple[int, int]:
    """[start, end) for a period's summaries, minute-aligned as Stripe
    requires: start floored, end ceiled to the minute and clamped to the
    minute after now (Stripe holds nothing later: meter events are at most
    5 min in the future, ours at least 5 min in the past); never empty."""
    start = epoch(period_start) // MINUTE * MINUTE
    end = -(-epoch(period_end) // MINUTE) * MINUTE
    now_ceiled = -(-(epoch(now) + 1) // MINUTE) * MINUTE
    end = min(end, now_ceiled)
    return start, max(end, start + MINUTE)


class SummaryError(Exception):
    """The summaries call failed; the message is scrubbed."""


class StripeTotals:
    """Stripe totals for reconciliation: one client per (key, account)."""

    def __init__(self, api_base: str | None, *, pacer: Pacer | None = None, retry: RetryPolicy | None = None,
                 timeout: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        self.api_base = api_base
        self.pacer = pacer or Pacer()
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.sleep = sleep
        self.calls = 0
        self._clients: dict[tuple[bool, str | None], stripe.StripeClient] = {}
        self._meters: dict[tuple[bool, str | None, str], str | None] = {}

    def __repr__(self) -> str:
        return f"StripeTotals(api_base={self.api_base!r})"

    @staticmethod
    def unavailable(mode: str, shadow: bool) -> str | None:
        """Why no summary of this mode can be read (no key of that mode), or None."""
        key = read_key(shadow)
        if key is None or (key_mode(key) or "live") != mode:
            return (f"no Stripe key of mode {mode!r} is configured"
                    + (" (shadow mappings use STRIPE_TEST_API_KEY only)" if shadow else ""))
        return None

    def _client(self, mode: str, account: str | None, shadow: bool) -> stripe.StripeClient:
        reason = self.unavailable(mode, shadow)
        if reason is not None:
            raise SummaryError(reason)
        key = read_key(shadow)
        client = self._clients.get((shadow, account))
        if client is None:
            client = make_client(key, self.api_base, account, self.timeout)
            self._clients[(shadow, account)] = client
        return client

    def _call(self, mode: str, account: str | None, fn: Any, *args: Any) -> Any:
        attempts = 0
        while True:
            self.pacer.acquire(mode, "general", account)
            attempts += 1
            self.calls += 1
            try:
                return fn(*args)
            except stripe.StripeError as exc:
                outcome = classify(exc)
            if isinstance(outcome, AlreadyExists):  # not for reads; treat as an error
                raise SummaryError("unexpected Stripe answer")
            assert isinstance(outcome, PushCallError)
            if outcome.kind != "retryable" or attempts >= self.retry.max_attempts:
                raise SummaryError(scrub(str(outcome)))
            self.sleep(self.retry.delay(attempts))

    def meter_id(self, mode: str, account: str | None, shadow: bool, event_name: str,
                 configured: str | None) -> str:
        if configured:
            return configured
        key = (shadow, account, event_name)
        if key not in self._meters:
            client = self._client(mode, account, shadow)
            params: dict[str, Any] = {"status": "active", "limit": PAGE_LIMIT}
            found = None
            while found is None:
                page = self._call(mode, account, client.v1.billing.meters.list, dict(params))
                found = next((m.id for m in page.data if m.event_name == event_name), None)
                if found or not page.has_more or not page.data:
                    break
                params["starting_after"] = page.data[-1].id
            self._meters[key] = found
        meter_id = self._meters[key]
        if meter_id is None:
            raise SummaryError(f"no active Stripe meter with event_name {event_name!r}")
        return meter_id

    def total(self, *, mode: str, account: str | None, shadow: bool, event_name: str, meter_id: str | None,
              customer: str, start: int, end: int) -> int:
        """Σ aggregated_value of the summaries for [start, end), every page.
        Without a grouping window Stripe returns one summary for the whole
        window, so the sum is the meter's own aggregation (sum or last)."""
        client = self._client(mode, account, shadow)
        meter = self.meter_id(mode, account, shadow, event_name, meter_id)
        params: dict[str, Any] = {"customer": customer, "start_time": start, "end_time": end, "limit": PAGE_LIMIT}
        total = 0
        while True:
            page = self._call(mode, account, client.v1.billing.meters.event_summaries.list, meter,
                              dict(params))
            total += sum(int(item.aggregated_value) for item in page.data)
            if not page.has_more or not page.data:
                return total
            params["starting_after"] = page.data[-1].id
