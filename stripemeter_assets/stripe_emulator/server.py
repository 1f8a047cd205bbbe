"""The emulator as a real HTTP server on 127.0.0.1, in a background thread or on the command line.

    with EmulatorServer() as emu:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.url})
        emu.create_customer("cus_A")
        ...
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import Any

from stripemeter_assets import settings

from . import hooks
from .billing import Billing
from .faults import FaultPlan, RateLimiter
from .handlers import RequestHandler
from .idempotency import KeysInFlight
from .state import EmulatorState

ALLOWED_HOST = "127.0.0.1"
DEFAULT_PORT = 12111


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    emulator: EmulatorServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-request is normal here (timeouts, drops)


class EmulatorServer:
    """A stateful Stripe emulator listening on ``127.0.0.1:port`` (0 = any free port).

    Context manager; ``url`` is the base address for ``stripe.StripeClient(...,
    base_addresses={"api": url})``. The test hooks are methods here and HTTP endpoints under
    ``/_emulator/`` (see ``hooks``).
    """

    def __init__(self, port: int = 0, host: str = ALLOWED_HOST, *, now: int | str | None = None) -> None:
        if host != ALLOWED_HOST:
            raise ValueError(f"the Stripe emulator only listens on {ALLOWED_HOST}, not {host!r}")
        self.host = host
        self.requested_port = int(port)
        self.state = EmulatorState(now=hooks.parse_time(now))
        self.state.billing = Billing(self.state)  # type: ignore[attr-defined]
        self.faults = FaultPlan()
        self.limiter = RateLimiter()
        self.keys_in_flight = KeysInFlight()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> EmulatorServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.requested_port), RequestHandler)
        httpd.emulator = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="stripe-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` is called from another thread."""
        self.start()
        assert self._thread is not None
        self._thread.join()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("emulator not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- hooks: state -----------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: objects, events, idempotency keys, request log, faults, rate
        limits; the clock returns to the value given at construction (or real time)."""
        self.state.reset()
        self.state.billing.reset()  # type: ignore[attr-defined]
        self.faults.clear()
        self.limiter.configure()
        self.keys_in_flight.clear()

    def now(self) -> int:
        return self.state.now()

    def clock_frozen(self) -> bool:
        return self.state.clock_frozen()

    def set_clock(self, now: int | str | None) -> int:
        """Freeze the emulator clock (epoch seconds or ISO-8601); ``None``: real time again."""
        return self.state.set_clock(hooks.parse_time(now))

    def advance_clock(self, seconds: int) -> int:
        return self.state.advance_clock(seconds)

    def create_customer(
        self,
        customer_id: str,
        *,
        livemode: bool = False,
        account: str | None = None,
        name: str | None = None,
        email: str | None = None,
    ) -> dict[str, Any]:
        return self.state.add_customer(customer_id, livemode=livemode, account=account, name=name, email=email)

    def create_meter(
        self,
        event_name: str,
        *,
        formula: str = "sum",
        meter_id: str | None = None,
        display_name: str | None = None,
        livemode: bool = False,
        account: str | None = None,
        customer_key: str = "stripe_customer_id",
        value_key: str = "value",
        event_time_window: str | None = None,
    ) -> dict[str, Any]:
        return self.state.add_meter(
            event_name,
            formula=formula,
            meter_id=meter_id,
            display_name=display_name,
            livemode=livemode,
            account=account,
            customer_key=customer_key,
            value_key=value_key,
            event_time_window=event_time_window,
        )

    def deactivate_meter(self, meter_id: str, *, livemode: bool = False, account: str | None = None) -> dict[str, Any]:
        return self.state.set_meter_status(livemode, account, meter_id, False)

    def set_summary_lag(self, seconds: int) -> int:
        """How long after receiving an event Stripe's summaries show it (default 60 s)."""
        with self.state.lock:
            self.state.summary_lag_seconds = max(0, int(seconds))
            return self.state.summary_lag_seconds

    def configure_error_reports(self, *, window_seconds: int | None = None, delay_seconds: int | None = None,
                                sample_limit: int | None = None) -> dict[str, int]:
        """Validation window, publication delay after it and sample errors named per error
        type of the meter error reports (defaults 60 s, 60 s, 3)."""
        return self.state.meter_errors.configure(window_seconds=window_seconds, delay_seconds=delay_seconds,
                                                 sample_limit=sample_limit)

    def set_invoice_grace(self, hours: int, *, livemode: bool = False, account: str | None = None) -> dict[str, Any]:
        """The account's invoice finalization grace period (1-72 h; Stripe sets it in the
        Dashboard only). Invoices already drafted keep theirs."""
        return self.state.billing.set_grace_hours(hours, livemode=livemode, account=account)  # type: ignore[attr-defined]

    def requests(self) -> list[dict[str, Any]]:
        """Every API request received, oldest first: id, time, method, path, params,
        idempotency_key, mode, account, status, replayed, fault. Never the API key."""
        return self.state.requests()

    def clear_requests(self) -> None:
        self.state.clear_requests()

    def meter_events(
        self, *, livemode: bool = False, account: str | None = None, include_cancelled: bool = True
    ) -> list[dict[str, Any]]:
        return self.state.list_events(livemode, account, include_cancelled=include_cancelled)

    def add_meter_event(
        self,
        event_name: str,
        customer: str,
        value: int | None,
        *,
        livemode: bool = False,
        account: str | None = None,
        timestamp: int | None = None,
        identifier: str | None = None,
        payload: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.state.add_event(
            event_name,
            customer,
            value,
            livemode=livemode,
            account=account,
            timestamp=timestamp,
            identifier=identifier,
            payload=payload,
        )

    def delete_meter_event(self, identifier: str, *, livemode: bool = False, account: str | None = None) -> int:
        return self.state.delete_event(identifier, livemode=livemode, account=account)

    def cancel_meter_event(self, identifier: str, *, livemode: bool = False, account: str | None = None) -> bool:
        return self.state.cancel_event(identifier, livemode=livemode, account=account)

    # -- hooks: faults and limits ---------------------------------------------------
    def inject_fault(
        self,
        kind: str,
        *,
        method: str | None = "POST",
        path_prefix: str = "/v1/",
        count: int = 1,
        status: int | None = None,
        delay: float = 0.0,
        should_retry: bool | None = None,
        livemode: bool | None = None,
        account: str | None = None,
    ) -> dict[str, Any]:
        return self.faults.add(
            kind,
            method=method,
            path_prefix=path_prefix,
            count=count,
            status=status,
            delay=delay,
            should_retry=should_retry,
            livemode=livemode,
            account=account,
        )

    def faults_pending(self) -> list[dict[str, Any]]:
        return self.faults.pending()

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_rate_limit(
        self,
        *,
        stripe_limits: bool = True,
        live: int | None = None,
        test: int | None = None,
        meter_event_concurrency: bool = False,
    ) -> dict[str, Any]:
        """Stripe's limits per mode and account (``stripe_limits``, on by default), flat
        ``live``/``test`` requests per second overriding them, and optionally one concurrent
        meter event call per (customer, meter)."""
        return self.limiter.configure(
            stripe_limits=stripe_limits, live=live, test=test, meter_event_concurrency=meter_event_concurrency
        )

    def connect_account(self, account: str, *, livemode: bool | None = None) -> None:
        """Lets the platform's keys act on ``account`` (creating customers or meters in an
        account through the hooks connects it too); any other ``Stripe-Account`` gets 403."""
        self.state.connect_account(account, livemode)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="stripemeter stripe-emulator",
        description="Run the stateful Stripe emulator (Billing Meters) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT}; 0 = any free)")
    parser.add_argument("--host", default=ALLOWED_HOST, help=f"only {ALLOWED_HOST} is allowed")
    parser.add_argument(
        "--now",
        default=settings.frozen_now(),
        help="freeze the emulator clock (epoch seconds or ISO-8601; default: $STRIPEMETER_NOW, else real time)",
    )
    parser.add_argument("--rate-limit-live", type=int, default=None,
                        help="flat live-mode requests per second (default: Stripe's limits per account)")
    parser.add_argument("--rate-limit-test", type=int, default=None,
                        help="flat test-mode requests per second (default: Stripe's limits per account)")
    parser.add_argument("--no-rate-limits", action="store_true", help="no rate limits at all")
    parser.add_argument("--connect", action="append", default=[], metavar="ACCT",
                        help="a connected account (acct_…) the keys may act on; repeatable")
    parser.add_argument(
        "--meter-event-concurrency",
        action="store_true",
        help="reject a second concurrent meter event call for the same customer and meter with 429",
    )
    args = parser.parse_args(argv)
    if args.host != ALLOWED_HOST:
        print(f"stripe emulator: refusing to listen on {args.host!r}; only {ALLOWED_HOST} is allowed", file=sys.stderr)
        return 2
    try:
        emu = EmulatorServer(port=args.port, now=args.now)
    except ValueError as exc:
        print(f"stripe emulator: {exc}", file=sys.stderr)
        return 2
    emu.set_rate_limit(
        stripe_limits=not args.no_rate_limits,
        live=args.rate_limit_live,
        test=args.rate_limit_test,
        meter_event_concurrency=args.meter_event_concurrency,
    )
    for account in args.connect:
        emu.connect_account(account)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            emu.start()
        except OSError as exc:
            print(f"stripe emulator: cannot listen on {ALLOWED_HOST}:{args.port}: {exc}", file=sys.stderr)
            return 1
        print(f"stripe emulator listening on {emu.url}", flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        emu.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
