"""The SDK's HTTP mode: talks to `stripemeter serve` (DESIGN §7, §8).

A flush POSTs the buffered events (each already carrying the idempotency key
`track()` gave it) with an `Idempotency-Key` for the batch, and retries with
exponential backoff on 429 (honouring `Retry-After`), 5xx and connection
errors. A retry after an answer was lost replays the server's first answer;
even without that, the events' own keys keep the ledger from counting twice.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import tenacity

log = logging.getLogger("stripemeter.sdk")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ApiError(Exception):
    """The API refused the request (a 4xx other than 429), or retries ran out."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class _Retryable(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _wait(base: float, cap: float):
    backoff = tenacity.wait_exponential_jitter(initial=base, max=cap)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable):
            after = exc.response.headers.get("Retry-After", "")
            if after.isdigit():
                return min(float(after), cap)
        return backoff(state)

    return wait


class HttpApi:
    def __init__(self, api_url: str, api_key: str | None, *, timeout: float = 30.0, max_attempts: int = 6,
                 backoff_seconds: float = 0.2, max_backoff_seconds: float = 10.0,
                 transport: httpx.BaseTransport | None = None):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=api_url.rstrip("/"), headers=headers, timeout=timeout,
                                    transport=transport)
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((_Retryable, httpx.TransportError)),
            wait=_wait(backoff_seconds, max_backoff_seconds),
            stop=tenacity.stop_after_attempt(max_attempts),
            before_sleep=lambda s: log.warning("stripemeter: %s, retrying (attempt %d)",
                                               s.outcome.exception(), s.attempt_number),
            reraise=True,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._retrying(self._once, method, path, **kwargs)
        except _Retryable as exc:
            raise ApiError(exc.response.status_code, exc.response.text[:500]) from None
        return response.json()

    def _once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._client.request(method, path, **kwargs)
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(response)
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text[:500])
        return response

    def ingest(self, lines: list[str], idempotency_key: str) -> dict[str, Any]:
        """POSTs JSONL lines (as `track()` built them) as one `{events: [...]}` body."""
        body = ('{"events":[' + ",".join(line.rstrip("\n") for line in lines) + "]}").encode("utf-8")
        return self.request("POST", "/v1/events/ingest", content=body,
                            headers={"Content-Type": "application/json", "Idempotency-Key": idempotency_key})

    def close(self) -> None:
        self._client.close()


def new_batch_key() -> str:
    return "sdk-batch-" + uuid.uuid4().hex
