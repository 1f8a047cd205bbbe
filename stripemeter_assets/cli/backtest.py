"""`stripemeter backtest --period 2025-03 --prices candidate.yaml`: what each customer's period
would have cost under candidate prices, next to the current `prices:` of the config.

The candidate file is YAML (or JSON) in the config's shape — `prices: {metric: priceConfig}`
with optional `prices_by_tenant:` — or just the `{metric: priceConfig}` map. Reads the warehouse
read-only. Prints a table (or `--json`) on stdout; a problem is one line on stderr and exit 2.
Also runs as `python -m stripemeter_assets.cli.backtest`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from stripemeter_assets.cli import fail

_PERIOD = re.compile(r"(\d{4})-(\d{2})(?:-01)?")


def backtest_command(period: str, prices_path: str, *, as_json: bool = False, tenant: str | None = None,
                     warehouse_path: str | None = None, config_path: str | None = None) -> int:
    """Runs the backtest and prints it; returns the exit status."""
    import duckdb
    import yaml

    from stripemeter_assets import settings
    from stripemeter_assets.pricing import ScenarioError
    from stripemeter_assets.projection.costs import backtest_period, config_price_book, parse_price_book
    from stripemeter_assets.warehouse import connect

    match = _PERIOD.fullmatch(period.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        return fail(f"--period: {period!r} is not a billing period (YYYY-MM)")
    start = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
    try:
        raw = yaml.safe_load(Path(prices_path).read_text(encoding="utf-8"))
    except OSError as exc:
        return fail(f"cannot read {prices_path}: {exc.strerror or exc}")
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return fail(f"{prices_path}: not YAML or JSON: {exc}")
    if not isinstance(raw, dict) or not raw:
        return fail(f"{prices_path}: expected `prices: {{metric: priceConfig}}` or a metric -> priceConfig map")
    if "prices" not in raw and "prices_by_tenant" not in raw:
        raw = {"prices": raw}
    try:
        candidate = parse_price_book(raw)
        current = config_price_book(settings.load_config(config_path))
    except ScenarioError as exc:
        return fail(str(exc))
    except ValueError as exc:  # settings.ConfigError
        return fail(f"config: {exc}")
    if not current:
        return fail("the config has no `prices:` to compare with (STRIPEMETER_CONFIG)")
    path = warehouse_path or settings.warehouse_path()
    if not Path(path).exists():
        return fail(f"no warehouse at {path}")
    try:
        with connect(path, read_only=True) as conn:
            rows = backtest_period(conn, start, candidate, current, tenant=tenant)
    except ScenarioError as exc:
        return fail(str(exc))
    except duckdb.Error as exc:
        return fail(f"cannot read the warehouse {path}: {exc}")
    report = to_report(f"{start:%Y-%m}", rows)
    print(json.dumps(report, indent=2) if as_json else format_table(report))
    return 0


def to_report(period: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The backtest rows as JSON-ready data: money as strings with the currency's places."""
    from stripemeter_assets.pricing import format_money

    totals: dict[str, list[Decimal]] = {}
    customers = []
    for row in rows:
        currency = row["currency"]
        old, new, diff = row["old_total"], row["new_total"], row["difference"]
        acc = totals.setdefault(currency, [Decimal(0), Decimal(0), Decimal(0)])
        acc[0] += old
        acc[1] += new
        acc[2] += diff
        customers.append({
            "tenant_id": row["tenant_id"],
            "customer_ref": row["customer_ref"],
            "currency": currency,
            "old_total": format_money(old, currency),
            "new_total": format_money(new, currency),
            "difference": format_money(diff, currency),
        })
    return {
        "period": period,
        "customers": customers,
        "totals": {
            currency: {"old_total": format_money(old, currency), "new_total": format_money(new, currency),
                       "difference": format_money(diff, currency)}
            for currency, (old, new, diff) in sorted(totals.items())
        },
    }


def format_table(report: dict[str, Any]) -> str:
    """The report as an aligned text table: one line per customer, then one total per currency."""
    if not report["customers"]:
        return f"period {report['period']}: no priced usage"
    header = ("tenant", "customer", "currency", "old total", "new total", "difference")
    customers = [(c["tenant_id"], c["customer_ref"], c["currency"], c["old_total"], c["new_total"],
                  c["difference"]) for c in report["customers"]]
    totals = [("TOTAL", "", currency, t["old_total"], t["new_total"], t["difference"])
              for currency, t in report["totals"].items()]
    widths = [max(len(row[i]) for row in [header, *customers, *totals]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i < 3 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([f"period {report['period']} (pre-tax, before commitments and credits)", line(header), rule,
                      *map(line, customers), rule, *map(line, totals)])


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """The `backtest` subcommand on a `stripemeter` subparsers object."""
    parser = sub.add_parser("backtest", help="per-customer period totals under candidate vs current prices")
    _arguments(parser)
    parser.set_defaults(func=lambda args: backtest_command(args.period, args.prices, as_json=args.json,
                                                           tenant=args.tenant))
    return parser


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", required=True,
                        help="YYYY-MM: the billing periods starting in this month (each customer's own)")
    parser.add_argument("--prices", required=True, help="candidate prices, YAML or JSON")
    parser.add_argument("--tenant", default=None, help="only this tenant")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stripemeter_assets.cli.backtest", description=__doc__)
    _arguments(parser)
    args = parser.parse_args(argv)
    return backtest_command(args.period, args.prices, as_json=args.json, tenant=args.tenant)


if __name__ == "__main__":
    sys.exit(main())
