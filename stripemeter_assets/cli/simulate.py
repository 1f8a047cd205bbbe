"""`simulate SCENARIO.json`: print the simulated invoice as JSON.

Only the invoice goes to stdout, so the output can be piped; every problem is one line on stderr
and exit status 2. Run as `python -m stripemeter_assets.cli.simulate SCENARIO.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from stripemeter_assets.cli import fail
from stripemeter_assets.pricing.errors import ScenarioError
from stripemeter_assets.pricing.simulator import InvoiceSimulator


def simulate_command(scenario_path: str) -> int:
    """Simulate the invoice for the scenario file at `scenario_path`; returns the exit status."""
    try:
        text = Path(scenario_path).read_text(encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot read {scenario_path}: {exc.strerror or exc}")
    except UnicodeDecodeError:
        return fail(f"cannot read {scenario_path}: not UTF-8 text")
    try:
        scenario = loads_exact(text)
    except json.JSONDecodeError as exc:
        return fail(f"{scenario_path}: invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    except (ValueError, RecursionError) as exc:
        return fail(f"{scenario_path}: invalid JSON: {exc}")
    try:
        invoice = InvoiceSimulator().simulate(scenario)
    except ScenarioError as exc:
        return fail(str(exc))
    print(json.dumps(invoice, indent=2))
    return 0


def loads_exact(text: str) -> Any:
    """Parse JSON with every number as an exact Decimal.

    NaN/Infinity (which Python's json accepts) and duplicate keys (where the last silently wins)
    are rejected with ValueError.
    """
    return json.loads(
        text,
        parse_float=Decimal,
        parse_int=Decimal,
        parse_constant=_reject_constant,
        object_pairs_hook=_unique_keys,
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stripemeter_assets.cli.simulate",
        description="Print the invoice a pricing scenario produces, as JSON.",
    )
    parser.add_argument("scenario", help="scenario JSON file (DESIGN §7 `simulate` shape)")
    return simulate_command(parser.parse_args(argv).scenario)


if __name__ == "__main__":
    sys.exit(main())
