"""The cost projection of billing periods, set-based (DESIGN §6).

Per counter everything happens in SQL (sql/projection/): the elapsed fraction of its own
period, its projected usage (exact integer arithmetic on 1e-9 units), its price (the
subscription item's Stripe price, else the config's), its notes, and the cost of both
quantities through the price terms of `price_terms`. Python parses each distinct price once
and computes only what would leave HUGEINT's range: those projections with the exact
`project_usage`, those costs with `price_line`.
"""

from __future__ import annotations

import json
from datetime import datetime
from fractions import Fraction

import duckdb
import numpy as np
import pyarrow as pa

from stripemeter_assets.pricing import PriceConfig, ScenarioError, parse_price_config
from stripemeter_assets.pricing.money import EXACT
from stripemeter_assets.projection.costs import (
    ACCUMULATING,
    MIN_ELAPSED,
    NOTE_NEGATIVE,
    NOTE_TOO_EARLY,
    NOTE_TOO_LARGE,
    NOTE_UNPRICED,
    USAGE_LIMIT,
    USAGE_PLACES,
    PriceBook,
    project_usage,
)
from stripemeter_assets.projection.price_terms import load_prices, price_ids, price_lines
from stripemeter_assets.settings import Config, naive
from stripemeter_assets.warehouse import load_sql, params_named, query, run_script, temp_table_from_rows

_STRIPE_PRICES = pa.schema([("account", pa.string()), ("price", pa.string()), ("metric", pa.string()),
                            ("price_id", pa.int32()), ("unit_scale", pa.int64())])
_TENANT_PRICES = pa.schema([("tenant_id", pa.string()), ("metric", pa.string()), ("price_id", pa.int32())])
_DEFAULT_PRICES = pa.schema([("metric", pa.string()), ("price_id", pa.int32())])
_EXACT_USAGE = pa.schema([("rid", pa.int64()), ("projected9", pa.string()), ("too_large", pa.bool_())])


def project_periods(conn: duckdb.DuckDBPyConnection, config: Config, prices: PriceBook,
                    starts: list[datetime], now: datetime) -> dict[str, str]:
    """Replaces the `cost_projection` rows of the billing periods starting at `starts` with
    their projection at `now` (run it inside a transaction). Returns the elapsed fraction per
    period start that has counters (of its earliest-ending ones), for the asset's metadata."""
    starts = [naive(s) for s in starts]
    by_id = _load_price_keys(conn, config, prices, starts)
    load_prices(conn, by_id)
    run_script(conn, "projection/macros.sql")
    _register_counters(conn, starts)
    try:
        run_script(conn, "projection/stage.sql", starts=starts, now=naive(now),
                   min_elapsed_num=MIN_ELAPSED.numerator, min_elapsed_den=MIN_ELAPSED.denominator,
                   accumulating=list(ACCUMULATING))
    finally:
        conn.unregister("projection_counters")
    _exact_projections(conn)
    run_script(conn, "projection/lines.sql")
    price_lines(conn, by_id)
    run_script(conn, "projection/cost_projection.sql", starts=starts, now=naive(now), too_early=NOTE_TOO_EARLY,
               too_large=NOTE_TOO_LARGE, unpriced=NOTE_UNPRICED, negative=NOTE_NEGATIVE)
    return {f"{r['period_start']:%Y-%m-%d %H:%M:%S}": str(r["fraction"]) for r in query(conn, "projection/elapsed.sql")}


def _load_price_keys(conn: duckdb.DuckDBPyConnection, config: Config, book: PriceBook,
                     starts: list[datetime]) -> dict[int, PriceConfig]:
    """TEMP tables of which price applies where (stage.sql), each distinct price parsed once;
    returns the prices by id."""
    parsed: dict[str, PriceConfig | None] = {}
    stripe = []
    for row in query(conn, "projection/stripe_prices.sql", starts=starts):
        if row["body"] not in parsed:
            parsed[row["body"]] = _stripe_price(row["body"])
        if parsed[row["body"]] is not None:
            stripe.append({**row, "config": parsed[row["body"]]})
    overrides = [(tenant, metric, price) for tenant, prices in book.by_tenant.items() for metric, price in prices.items()]
    ids = price_ids([*(r["config"] for r in stripe), *book.default.values(),
                     *(price for _, _, price in overrides if price is not None)])
    scales = {r["metric"]: config.metric(r["metric"]).unit_scale for r in stripe}
    temp_table_from_rows(conn, "projection_stripe_prices", [
        {"account": r["account"], "price": r["price"], "metric": r["metric"], "price_id": ids[r["config"]],
         "unit_scale": scales[r["metric"]]} for r in stripe],
        _STRIPE_PRICES)
    temp_table_from_rows(conn, "projection_tenant_prices", [
        {"tenant_id": tenant, "metric": metric, "price_id": None if price is None else ids[price]}
        for tenant, metric, price in overrides], _TENANT_PRICES)
    temp_table_from_rows(conn, "projection_default_prices", [
        {"metric": metric, "price_id": ids[price]} for metric, price in book.default.items()], _DEFAULT_PRICES)
    return {price_id: price for price, price_id in ids.items()}


def _stripe_price(body: str) -> PriceConfig | None:
    # A price the pricing library cannot read is left out: the config's price applies.
    try:
        return parse_price_config(json.loads(body), "price")
    except ScenarioError:
        return None


def _register_counters(conn: duckdb.DuckDBPyConnection, starts: list[datetime]) -> None:
    """TEMP view `projection_counters`: the counters (counters.sql) with `v9`, each value in
    1e-9 units.

    A DECIMAL(38, 9) is its value in 1e-9 units as a 128-bit integer: Arrow's buffer of the
    values holds it as two 64-bit words (low, high), which stage.sql joins with one
    multiplication, none of the divisions DuckDB's own rescaling costs per row.
    """
    stmt = load_sql("projection/counters.sql")
    counters = conn.sql(stmt, params=params_named(stmt, {"starts": starts})).to_arrow_table()
    values = counters.column("value").combine_chunks()
    words = np.frombuffer(values.buffers()[1], dtype="<i8")[2 * values.offset:2 * (values.offset + len(values))] \
        if len(values) else np.zeros(0, dtype="<i8")
    conn.register("projection_counters", counters.append_column("v9_low", pa.array(words[0::2].view(np.uint64)))
                  .append_column("v9_high", pa.array(words[1::2])))


def _exact_projections(conn: duckdb.DuckDBPyConnection) -> None:
    """The projections SQL cannot compute in range, by `project_usage` itself."""
    rows = query(conn, "projection/exact_usage.sql")
    if not rows:
        return
    exact = []
    for r in rows:
        projected = project_usage(r["aggregation"], r["value"], Fraction(r["elapsed_us"], r["total_us"]))
        too_large = abs(projected) >= USAGE_LIMIT
        exact.append({"rid": r["rid"], "too_large": too_large,
                      "projected9": None if too_large else str(int(projected.scaleb(USAGE_PLACES, EXACT)))})
    temp_table_from_rows(conn, "projection_exact_usage", exact, _EXACT_USAGE)
    run_script(conn, "projection/apply_exact_usage.sql")
