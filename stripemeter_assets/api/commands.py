"""The `stripemeter serve` and `stripemeter widget-token` commands."""

from __future__ import annotations

import argparse
import sys

from stripemeter_assets import settings
from stripemeter_assets.api.token import make_token, parse_ttl


def add_parsers(sub) -> None:
    serve_parser = sub.add_parser("serve", help="run the HTTP API (uvicorn; 127.0.0.1 by default)")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8787)
    serve_parser.set_defaults(func=serve)
    token = sub.add_parser("widget-token", help="print a signed, expiring customer-widget token")
    token.add_argument("--tenant", required=True)
    token.add_argument("--customer", required=True)
    token.add_argument("--ttl", default="1h", help="lifetime: 90s, 30m, 1h, 7d")
    token.set_defaults(func=widget_token)


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from stripemeter_assets.api.app import create_app

    # One process: the idempotency store and rate limits live in it. Access
    # logs off: they would carry query strings (widget tokens).
    print(f"stripemeter API on http://{args.host}:{args.port} (docs: /docs)", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, access_log=False, log_level="warning",
                loop="auto", http="auto")
    return 0


def widget_token(args: argparse.Namespace) -> int:
    secret = settings.widget_secret()
    if secret is None:
        print("STRIPEMETER_WIDGET_SECRET is not set: the server needs the same secret to check tokens",
              file=sys.stderr)
        return 2
    try:
        ttl = parse_ttl(args.ttl)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(make_token(secret, args.tenant, args.customer, ttl, settings.now()))
    return 0
