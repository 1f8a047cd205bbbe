"""Customer-widget tokens: an HMAC-SHA256-signed, expiring grant to see one
(tenant, customer)'s usage. `payload.signature`, both base64url; the key is
`STRIPEMETER_WIDGET_SECRET`, never config."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class Grant:
    tenant: str
    customer: str
    expires: int  # epoch seconds


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def make_token(secret: bytes, tenant: str, customer: str, ttl: timedelta, now: datetime) -> str:
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    body = {"t": tenant, "c": customer, "exp": int((now + ttl).timestamp())}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_sign(secret, payload)}"


def read_token(secret: bytes, token: str, now: datetime) -> Grant:
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(signature, _sign(secret, payload)):
        raise InvalidToken("bad signature")
    try:
        body = json.loads(_unb64(payload))
        grant = Grant(tenant=str(body["t"]), customer=str(body["c"]), expires=int(body["exp"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidToken("malformed token") from exc
    if grant.expires <= now.timestamp():
        raise InvalidToken("token expired")
    return grant


def parse_ttl(text: str) -> timedelta:
    """`90s`, `30m`, `1h`, `7d`."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"ttl {text!r}: a number followed by s, m, h or d (e.g. 1h)")
    return timedelta(**{units[text[-1]]: int(text[:-1])})
