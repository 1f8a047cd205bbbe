"""Test hooks under ``/_emulator/`` (JSON in, JSON out; no API key needed).

The same operations are methods on ``EmulatorServer``. A scope is given as
``livemode`` (bool, default false) and ``account`` (``acct_…``; absent/null/"platform" =
the platform account).

    GET    /_emulator/health
    POST   /_emulator/reset
    GET    /_emulator/clock                  -> {"now": epoch, "frozen": bool}
    POST   /_emulator/clock                  {"now": epoch|ISO|null} or {"advance": seconds}
    POST   /_emulator/customers              {"id", "livemode"?, "account"?, "name"?, "email"?}
    POST   /_emulator/meters                 {"event_name", "formula"?, "id"?, "display_name"?,
                                              "customer_key"?, "value_key"?, "event_time_window"?, scope}
    POST   /_emulator/summary_lag            {"seconds"}: summaries show an event this long after receipt
    POST   /_emulator/error_reports          {"window_seconds"?, "delay_seconds"?, "sample_limit"?}
    GET    /_emulator/faults                 -> pending faults
    POST   /_emulator/faults                 {"kind", "method"?, "path_prefix"?, "count"?, "status"?,
                                              "delay"?, "should_retry"?, "livemode"?, "account"?}
    DELETE /_emulator/faults
    GET    /_emulator/requests               -> every API request received (never the key)
    DELETE /_emulator/requests
    GET    /_emulator/meter_events?livemode=&account=&include_cancelled=
    POST   /_emulator/meter_events           {"event_name", "customer", "value", "timestamp"?,
                                              "identifier"?, "payload"?, scope}  (no validation)
    POST   /_emulator/meter_events/delete    {"identifier", scope}
    POST   /_emulator/meter_events/cancel    {"identifier", scope}
    POST   /_emulator/invoice_settings       {"grace_hours": 1..72, scope}
    GET    /_emulator/rate_limit
    POST   /_emulator/rate_limit             {"stripe_limits"?: bool (default true), "live"?: rps, "test"?: rps,
                                              "meter_event_concurrency"?: bool}
    POST   /_emulator/accounts               {"account": "acct_…", "livemode"?}: a connected account
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .errors import StripeError

if TYPE_CHECKING:
    from .server import EmulatorServer


class HookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_time(value: Any) -> int | None:
    """Epoch seconds from an int, a digit string or an ISO-8601 time (naive = UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("not a time")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        return int(text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _bool(value: Any, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("1", "true", "yes", "live")


def _scope(args: dict[str, Any]) -> tuple[bool, str | None]:
    livemode = _bool(args.get("livemode"))
    if args.get("mode") is not None:
        livemode = str(args["mode"]).lower() == "live"
    account = args.get("account") or None
    if account == "platform":
        account = None
    return livemode, account


def _require(args: dict[str, Any], name: str) -> Any:
    if args.get(name) in (None, ""):
        raise HookError(400, f"missing {name}")
    return args[name]


def handle(emu: EmulatorServer, method: str, path: str, args: dict[str, Any]) -> tuple[int, Any]:
    """Run one hook; ``args`` is the JSON body merged over the query string."""
    route = path[len("/_emulator") :].rstrip("/") or "/"
    try:
        return 200, _route(emu, method, route, args)
    except HookError as exc:
        return exc.status, {"error": str(exc)}
    except StripeError as exc:
        return 400, {"error": exc.message}
    except (ValueError, TypeError, KeyError) as exc:
        return 400, {"error": f"{type(exc).__name__}: {exc}"}


def _route(emu: EmulatorServer, method: str, route: str, args: dict[str, Any]) -> Any:
    if route == "/health":
        return {"ok": True}
    if route == "/reset" and method == "POST":
        emu.reset()
        return {"ok": True}
    if route == "/clock":
        if method == "POST":
            if "advance" in args:
                emu.advance_clock(int(args["advance"]))
            else:
                emu.set_clock(parse_time(args.get("now")))
        return {"now": emu.now(), "frozen": emu.clock_frozen()}
    if route == "/customers" and method == "POST":
        livemode, account = _scope(args)
        return emu.create_customer(
            _require(args, "id"),
            livemode=livemode,
            account=account,
            name=args.get("name"),
            email=args.get("email"),
        )
    if route == "/meters" and method == "POST":
        livemode, account = _scope(args)
        return emu.create_meter(
            _require(args, "event_name"),
            formula=args.get("formula") or "sum",
            meter_id=args.get("id"),
            display_name=args.get("display_name"),
            livemode=livemode,
            account=account,
            customer_key=args.get("customer_key") or "stripe_customer_id",
            value_key=args.get("value_key") or "value",
            event_time_window=args.get("event_time_window") or None,
        )
    if route == "/accounts" and method == "POST":
        emu.connect_account(_require(args, "account"),
                            livemode=None if args.get("livemode") is None else _bool(args["livemode"]))
        return {"ok": True}
    if route == "/summary_lag" and method == "POST":
        return {"seconds": emu.set_summary_lag(int(_require(args, "seconds")))}
    if route == "/error_reports" and method == "POST":
        return emu.configure_error_reports(
            window_seconds=args.get("window_seconds"), delay_seconds=args.get("delay_seconds"),
            sample_limit=args.get("sample_limit"))
    if route == "/faults":
        if method == "GET":
            return {"faults": emu.faults_pending()}
        if method == "DELETE":
            emu.clear_faults()
            return {"ok": True}
        if method == "POST":
            livemode = None if args.get("livemode") is None else _bool(args.get("livemode"))
            return emu.inject_fault(
                _require(args, "kind"),
                method=args.get("method", "POST"),
                path_prefix=args.get("path_prefix") or "/v1/",
                count=int(args.get("count") or 1),
                status=None if args.get("status") is None else int(args["status"]),
                delay=float(args.get("delay") or 0.0),
                should_retry=None if args.get("should_retry") is None else _bool(args["should_retry"]),
                livemode=livemode,
                account=args.get("account") or None,
            )
    if route == "/requests":
        if method == "GET":
            return {"requests": emu.requests()}
        if method == "DELETE":
            emu.clear_requests()
            return {"ok": True}
    if route == "/meter_events":
        livemode, account = _scope(args)
        if method == "GET":
            return {
                "meter_events": emu.meter_events(
                    livemode=livemode, account=account, include_cancelled=_bool(args.get("include_cancelled"), True)
                )
            }
        if method == "POST":
            value = args.get("value")
            return emu.add_meter_event(
                _require(args, "event_name"),
                _require(args, "customer"),
                None if value is None else int(value),
                livemode=livemode,
                account=account,
                timestamp=parse_time(args.get("timestamp")),
                identifier=args.get("identifier"),
                payload=args.get("payload"),
            )
    if route == "/meter_events/delete" and method == "POST":
        livemode, account = _scope(args)
        return {"deleted": emu.delete_meter_event(_require(args, "identifier"), livemode=livemode, account=account)}
    if route == "/meter_events/cancel" and method == "POST":
        livemode, account = _scope(args)
        found = emu.cancel_meter_event(_require(args, "identifier"), livemode=livemode, account=account)
        if not found:
            raise HookError(404, "no such meter event identifier")
        return {"cancelled": True}
    if route == "/invoice_settings" and method == "POST":
        livemode, account = _scope(args)
        return emu.set_invoice_grace(int(_require(args, "grace_hours")), livemode=livemode, account=account)
    if route == "/rate_limit":
        if method == "POST":
            return emu.set_rate_limit(
                stripe_limits=_bool(args.get("stripe_limits"), True),
                live=None if args.get("live") is None else int(args["live"]),
                test=None if args.get("test") is None else int(args["test"]),
                meter_event_concurrency=_bool(args.get("meter_event_concurrency")),
            )
        if method == "GET":
            return emu.limiter.to_json()
    raise HookError(404, f"no emulator hook {method} {route}")
