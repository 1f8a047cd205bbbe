"""HTTP routing: Stripe's v1 endpoints that stripemeter calls, plus the ``/_emulator/`` hooks.

One API request goes: authenticate (mode from the key prefix; the key itself is dropped at
once) → account from ``Stripe-Account`` (403 unless connected) → Stripe's rate limits per mode
and account → injected fault → (under the
state lock) idempotency replay or endpoint, idempotency save → request log → response.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import unquote, urlsplit

from . import billing, errors, forms, hooks
from .errors import StripeError
from .state import EmulatorState, IdempotencyRecord, new_id

if TYPE_CHECKING:
    from .server import EmulatorServer

LIVE_PREFIXES = ("sk_live_", "rk_live_")
TEST_PREFIXES = ("sk_test_", "rk_test_")
MAX_IDEMPOTENCY_KEY = 255

Endpoint = Callable[[EmulatorState, bool, "str | None", dict[str, Any], dict[str, str]], dict[str, Any]]

_ROUTES: list[tuple[str, re.Pattern[str], Endpoint]] = [
    ("POST", re.compile(r"/v1/customers"), lambda s, lm, ac, p, m: s.create_customer(lm, ac, p)),
    ("GET", re.compile(r"/v1/customers"), lambda s, lm, ac, p, m: s.list_customers(lm, ac, p)),
    ("GET", re.compile(r"/v1/customers/(?P<id>[^/]+)"), lambda s, lm, ac, p, m: s.get_customer(lm, ac, m["id"])),
    (
        "DELETE",
        re.compile(r"/v1/customers/(?P<id>[^/]+)"),
        lambda s, lm, ac, p, m: s.delete_customer(lm, ac, m["id"]),
    ),
    ("POST", re.compile(r"/v1/billing/meters"), lambda s, lm, ac, p, m: s.create_meter(lm, ac, p)),
    ("GET", re.compile(r"/v1/billing/meters"), lambda s, lm, ac, p, m: s.list_meters(lm, ac, p)),
    ("GET", re.compile(r"/v1/billing/meters/(?P<id>[^/]+)"), lambda s, lm, ac, p, m: s.get_meter(lm, ac, m["id"])),
    ("POST", re.compile(r"/v1/billing/meters/(?P<id>[^/]+)"), lambda s, lm, ac, p, m: s.update_meter(lm, ac, m["id"], p)),
    (
        "POST",
        re.compile(r"/v1/billing/meters/(?P<id>[^/]+)/deactivate"),
        lambda s, lm, ac, p, m: s.set_meter_status(lm, ac, m["id"], False),
    ),
    (
        "POST",
        re.compile(r"/v1/billing/meters/(?P<id>[^/]+)/reactivate"),
        lambda s, lm, ac, p, m: s.set_meter_status(lm, ac, m["id"], True),
    ),
    (
        "GET",
        re.compile(r"/v1/billing/meters/(?P<id>[^/]+)/event_summaries"),
        lambda s, lm, ac, p, m: s.event_summaries(lm, ac, m["id"], p),
    ),
    ("POST", re.compile(r"/v1/billing/meter_events"), lambda s, lm, ac, p, m: s.create_meter_event(lm, ac, p)),
    ("GET", re.compile(r"/v2/core/events"), lambda s, lm, ac, p, m: s.meter_errors.list(lm, ac, p, s.now())),
    (
        "GET",
        re.compile(r"/v2/core/events/(?P<id>[^/]+)"),
        lambda s, lm, ac, p, m: s.meter_errors.retrieve(lm, ac, m["id"], s.now()),
    ),
    (
        "POST",
        re.compile(r"/v1/billing/meter_event_adjustments"),
        lambda s, lm, ac, p, m: s.cancel_by_adjustment(lm, ac, p),
    ),
]
_ROUTES += [(method, re.compile(pattern), endpoint) for method, pattern, endpoint in billing.routes()]


def dispatch(state: EmulatorState, method: str, path: str, livemode: bool, account: str | None, params: dict[str, Any]) -> dict[str, Any]:
    for route_method, pattern, endpoint in _ROUTES:
        match = pattern.fullmatch(path)
        if match and route_method == method:
            groups = {k: unquote(v) for k, v in match.groupdict().items()}
            return endpoint(state, livemode, account, params, groups)
    raise errors.invalid(
        f"Unrecognized request URL ({method}: {path}). This Stripe emulator implements customers, "
        "billing meters, meter events, meter event adjustments, meter event summaries, v2 events, products, "
        "prices, subscriptions, subscription items and invoices.",
        status=404,
    )


def livemode_from_authorization(header: str | None) -> bool:
    """Live or test from the key prefix. The key is not kept, logged or echoed."""
    if not header:
        raise errors.authentication(
            "You did not provide an API key. You need to provide your API key in the Authorization "
            "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        key = credential.strip()
    elif scheme.lower() == "basic":
        try:
            key = base64.b64decode(credential.strip()).decode("utf-8").partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            key = ""
    else:
        key = ""
    if any(key.startswith(p) and len(key) > len(p) for p in LIVE_PREFIXES):
        return True
    if any(key.startswith(p) and len(key) > len(p) for p in TEST_PREFIXES):
        return False
    raise errors.authentication("Invalid API Key provided.")


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2) + "\n").encode("utf-8")


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.stripe.com
    server_version = "stripe-emulator"
    sys_version = ""
    timeout = 120  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms stalls

    server: Any  # the HTTP server, carrying .emulator

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: the request log is available through the hooks

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle()

    # ------------------------------------------------------------------
    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        emu: EmulatorServer = self.server.emulator
        url = urlsplit(self.path)
        path = url.path
        body = self._read_body()
        if path == "/_emulator" or path.startswith("/_emulator/"):
            self._hook(emu, path, url.query, body)
        else:
            self._api(emu, path, url.query, body)

    def _hook(self, emu: EmulatorServer, path: str, query: str, body: bytes) -> None:
        args: dict[str, Any] = dict(forms.decode_query(query))
        if body:
            try:
                data = json.loads(body.decode("utf-8"))
            except ValueError:
                self._send(400, _json({"error": "hook bodies are JSON"}), {})
                return
            if not isinstance(data, dict):
                self._send(400, _json({"error": "hook body must be a JSON object"}), {})
                return
            args.update(data)
        status, obj = hooks.handle(emu, self.command, path, args)
        self._send(status, _json(obj), {})

    def _api(self, emu: EmulatorServer, path: str, query: str, body: bytes) -> None:
        state = emu.state
        method = self.command
        request_id = new_id("req_", 14)
        params = forms.decode_query(query)
        if method == "POST" and body:
            params.update(forms.decode_body(body))
        idempotency_key = self.headers.get("Idempotency-Key") or None
        account = self.headers.get("Stripe-Account") or None
        entry: dict[str, Any] = {
            "id": request_id,
            "time": state.now(),
            "method": method,
            "path": path,
            "params": params,
            "idempotency_key": idempotency_key,
            "mode": None,
            "account": account,
            "status": None,
            "replayed": False,
            "fault": None,
        }
        headers: dict[str, str] = {}
        drop_after = False
        concurrency_key: tuple[Any, ...] | None = None
        held_key: tuple[bool, str | None, str] | None = None
        try:
            livemode = livemode_from_authorization(self.headers.get("Authorization"))
            entry["mode"] = "live" if livemode else "test"
            if account is not None and not state.is_connected(livemode, account):
                # https://docs.stripe.com/connect/authentication: a Stripe-Account the key has
                # no access to is refused with 403 (the SDK's PermissionError).
                raise StripeError(
                    403,
                    "invalid_request_error",
                    f"The provided key does not have access to account '{account}' (or that account "
                    "does not exist). Application access may have been revoked.",
                )
            if not emu.limiter.allow(livemode, account, method == "POST" and path == "/v1/billing/meter_events"):
                raise errors.rate_limit()
            fault = emu.faults.take(method, path, livemode, account)
            if fault is not None:
                entry["fault"] = fault.kind
            if method == "POST" and path == "/v1/billing/meter_events":
                concurrency_key = self._meter_event_key(state, livemode, account, params)
                if not emu.limiter.enter(concurrency_key):
                    concurrency_key = None
                    raise errors.rate_limit(
                        "Too many concurrent requests for this customer and meter: the meter event "
                        "endpoint allows one concurrent call per customer per meter."
                    )
            if method == "POST" and idempotency_key is not None:
                if not emu.keys_in_flight.begin(livemode, account, idempotency_key):
                    raise errors.idempotency_in_use()
                held_key = (livemode, account, idempotency_key)
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.delay)
            if fault is not None and fault.kind == "drop":
                state.log_request(entry)
                self._drop()
                return
            if fault is not None:
                try:
                    self._raise_fault(fault)
                except StripeError as exc:
                    if fault.kind == "api_error" and held_key is not None:
                        self._save_error(state, method, path, livemode, account, params, idempotency_key,
                                         request_id, exc)
                    raise
            status, payload, headers, replayed = self._execute(
                state, method, path, livemode, account, params, idempotency_key, request_id
            )
            entry["replayed"] = replayed
            drop_after = fault is not None and fault.kind == "accept_then_drop"
        except StripeError as exc:
            status, payload, headers = exc.status, _json(exc.body()), dict(exc.headers)
        finally:
            if concurrency_key is not None:
                emu.limiter.leave(concurrency_key)
            if held_key is not None:
                emu.keys_in_flight.end(*held_key)
        entry["status"] = status
        state.log_request(entry)
        if drop_after:
            self._drop()
            return
        self._send(status, payload, headers, request_id=request_id)

    @staticmethod
    def _meter_event_key(state: EmulatorState, livemode: bool, account: str | None, params: dict[str, Any]) -> tuple[Any, ...]:
        event_name = params.get("event_name")
        payload = params.get("payload") if isinstance(params.get("payload"), dict) else {}
        customer_key = "stripe_customer_id"
        with state.lock:
            for meter in state.scope(livemode, account).meters.values():
                if meter.status == "active" and meter.event_name == event_name:
                    customer_key = meter.customer_key
        return (livemode, account, event_name, payload.get(customer_key))

    @staticmethod
    def _save_error(state: EmulatorState, method: str, path: str, livemode: bool, account: str | None,
                    params: dict[str, Any], key: str | None, request_id: str, exc: StripeError) -> None:
        """A 5xx raised once the endpoint began is saved under the idempotency key and
        replayed for that key until it is pruned (24 h): "Subsequent requests with the same
        key return the same result, including 500 errors."
        (https://docs.stripe.com/api/idempotent_requests)"""
        assert key is not None
        with state.lock:
            if state.idempotency_lookup(livemode, account, key) is None:
                state.idempotency_save(livemode, account, key, IdempotencyRecord(
                    method=method, path=path, params=params, status=exc.status, body=_json(exc.body()),
                    headers=dict(exc.headers), created=state.now(), request_id=request_id))

    @staticmethod
    def _raise_fault(fault: Any) -> None:
        kind = fault.kind
        if kind in ("drop", "accept_then_drop", "delay"):
            return
        if kind == "rate_limit":
            exc = errors.rate_limit()
            if fault.status:
                exc.status = fault.status
        elif kind == "lock_timeout":
            exc = errors.lock_timeout(fault.status or 429)
        elif kind == "idempotency_conflict":
            exc = errors.idempotency_in_use(fault.status or 409)
        else:
            exc = errors.api_error(fault.status or 500)
        if fault.should_retry is not None:
            exc.headers["Stripe-Should-Retry"] = "true" if fault.should_retry else "false"
        raise exc

    @staticmethod
    def _execute(
        state: EmulatorState,
        method: str,
        path: str,
        livemode: bool,
        account: str | None,
        params: dict[str, Any],
        key: str | None,
        request_id: str,
    ) -> tuple[int, bytes, dict[str, str], bool]:
        idempotent = method == "POST" and key is not None
        with state.lock:
            if idempotent:
                assert key is not None
                if len(key) > MAX_IDEMPOTENCY_KEY:
                    raise errors.invalid(
                        f"Idempotency keys can be at most {MAX_IDEMPOTENCY_KEY} characters long.",
                        param="Idempotency-Key",
                    )
                record = state.idempotency_lookup(livemode, account, key)
                if record is not None:
                    if record.method != method or record.path != path:
                        raise StripeError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used for the same endpoint they were "
                            f"first used for ('{record.method} {record.path}'). Try using a key other than "
                            f"'{key}' if you meant to execute a different request.",
                        )
                    if record.params != params:
                        raise StripeError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they "
                            f"were first used with. Try using a key other than '{key}' if you meant to "
                            "execute a different request.",
                        )
                    replay_headers = {
                        **record.headers,
                        "Idempotent-Replayed": "true",
                        "Original-Request": record.request_id,
                    }
                    return record.status, record.body, replay_headers, True
            saved = True
            try:
                status, body, headers = 200, _json(dispatch(state, method, path, livemode, account, params)), {}
            except StripeError as exc:
                status, body, headers, saved = exc.status, _json(exc.body()), dict(exc.headers), exc.saved
            except Exception:  # an emulator bug must look like Stripe's 500, not leak internals
                exc = errors.api_error(500)
                status, body, headers, saved = 500, _json(exc.body()), {}, False
            if idempotent and saved:
                assert key is not None
                state.idempotency_save(
                    livemode,
                    account,
                    key,
                    IdempotencyRecord(
                        method=method,
                        path=path,
                        params=params,
                        status=status,
                        body=body,
                        headers=headers,
                        created=state.now(),
                        request_id=request_id,
                    ),
                )
            return status, body, headers, False

    # ------------------------------------------------------------------
    def _send(self, status: int, body: bytes, headers: dict[str, str], *, request_id: str | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if request_id is not None:
                self.send_header("Request-Id", request_id)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True

    def _drop(self) -> None:
        """Close the connection without a response."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
