"""Stripe's error JSON, as the emulator returns it.

Shape: ``{"error": {"type", "message", "code"?, "param"?}}`` with the HTTP status Stripe
uses; the SDK maps status + ``type``/``code`` to its exception classes (400/404 →
``InvalidRequestError`` or ``IdempotencyError``, 401 → ``AuthenticationError``, 403 →
``PermissionError``, 429 → ``RateLimitError``, other → ``APIError``).
Messages never contain an API key.
"""

from __future__ import annotations

from typing import Any


class StripeError(Exception):
    """An error response. ``saved`` marks errors raised after an endpoint began executing:
    Stripe stores those for the request's idempotency key (parameter validation errors
    are not stored, so a corrected retry with the same key runs)."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        saved: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        self.saved = saved

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None, status: int = 400) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param)


def missing_param(param: str) -> StripeError:
    return invalid(f"Missing required param: {param}.", param=param, code="parameter_missing")


def unknown_param(param: str) -> StripeError:
    return invalid(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def no_such(kind: str, ident: str, *, param: str | None = "id", status: int = 404) -> StripeError:
    return invalid(f"No such {kind}: '{ident}'", param=param, code="resource_missing", status=status)


def authentication(message: str) -> StripeError:
    return StripeError(401, "invalid_request_error", message)


def rate_limit(message: str | None = None) -> StripeError:
    # Stripe's 429 carries no Retry-After and no Stripe-Should-Retry, so the SDK does not
    # retry it on its own: the caller must back off.
    return StripeError(
        429,
        "invalid_request_error",
        message
        or "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )


def lock_timeout(status: int = 429) -> StripeError:
    return StripeError(
        status,
        "invalid_request_error",
        "This object cannot be accessed right now because another API request or Stripe process "
        "is currently accessing it. If you see this error intermittently, retry the request.",
        code="lock_timeout",
        headers={"Stripe-Should-Retry": "true"},
    )


def idempotency_in_use(status: int = 409) -> StripeError:
    return StripeError(
        status,
        "idempotency_error",
        "There is currently another in-progress request using this Idempotency-Key. "
        "Retry the request later.",
        code="idempotency_key_in_use",
    )


def api_error(status: int = 500) -> StripeError:
    return StripeError(
        status,
        "api_error",
        "An unknown error occurred while processing this request (injected by the Stripe emulator).",
    )
