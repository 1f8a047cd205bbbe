"""Prices as the integer terms SQL prices lines with (sql/projection/line_costs.sql).

Within one band of a price (a tier; the whole price for flat and package) `exact_charge` is
`base + n × unit`, n the units the price counts (packages for a package price). The constants
of every band are scaled to integers once per price: quantities in 1e-9 units (n9 = n × 1e9),
money in 10^-scale units, so SQL prices each line with HUGEINT multiplications and one
division, with `price_line`'s minimum/maximum charges and half-up rounding to minor units.
Where a number could leave HUGEINT's range (a price whose constants already do, or a line
past its price's `n9_limit`), SQL leaves the cost NULL and `price_lines` prices that line with
`price_line` itself, once per distinct (price, unit scale, quantity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, localcontext

import duckdb
import pyarrow as pa

from stripemeter_assets.pricing import PriceConfig, minor_unit_exponent, price_line
from stripemeter_assets.pricing.money import EXACT
from stripemeter_assets.warehouse import query, run_script, temp_table_from_rows

# Every HUGEINT the SQL computes stays below this (HUGEINT holds up to 1.7e38); so does any
# DECIMAL(38, 0) handed over through Arrow.
LIMIT = 10**38
# Places of the quantities (DECIMAL(38, 9)).
QUANTITY_PLACES = 9

_INT = pa.decimal128(38, 0)
PRICES_SCHEMA = pa.schema([
    ("price_id", pa.int32()),
    ("currency", pa.string()),
    ("step", pa.decimal128(5, 4)),        # one minor unit: 0.01 for USD
    ("div", _INT),                        # 10^(scale - minor units): money units per minor unit
    ("half", _INT),
    ("min_s", _INT),
    ("max_s", _INT),
    ("pkg_den", _INT),                    # package size = pkg_size9 / (pkg_den × 1e9)
    ("pkg_size9", _INT),
    ("pkg_up", pa.bool_()),
    ("pkg_limit", _INT),                  # largest units (1e-9) whose package count stays in range
    ("n9_limit", _INT),                   # largest counted units (1e-9) SQL prices; NULL: Python prices all
])
BANDS_SCHEMA = pa.schema([
    ("price_id", pa.int32()),
    ("lo9", _INT),                        # the band holds lo9 < n9 <= hi9
    ("hi9", _INT),
    ("base_s", _INT),
    ("unit_s", _INT),
])


@dataclass(frozen=True)
class _Band:
    lo: Decimal
    hi: Decimal | None
    base: Decimal
    unit: Decimal


def load_prices(conn: duckdb.DuckDBPyConnection, prices: Mapping[int, PriceConfig]) -> None:
    """TEMP `projection_prices` and `projection_bands`: the terms of every price by its id."""
    terms, bands = [], []
    for price_id, config in prices.items():
        row, rows = _terms(price_id, config)
        terms.append(row)
        bands += rows
    temp_table_from_rows(conn, "projection_prices_in", terms, PRICES_SCHEMA)
    temp_table_from_rows(conn, "projection_bands_in", bands, BANDS_SCHEMA)
    run_script(conn, "projection/prices.sql")


def price_lines(conn: duckdb.DuckDBPyConnection, prices: Mapping[int, PriceConfig]) -> None:
    """TEMP `projection_line_costs`: the cost of every line of `projection_lines` (price_id,
    unit_scale (0: the quantity as is), q9: the quantity in 1e-9 units), priced as
    `price_line` prices it."""
    run_script(conn, "projection/macros.sql")
    run_script(conn, "projection/line_costs.sql")
    rest = query(conn, "projection/unpriced_lines.sql")
    if not rest:
        return
    exact = [{"price_id": r["price_id"], "unit_scale": r["unit_scale"], "q9": str(r["q9"]),
              "cost": price_line(prices[r["price_id"]],
                                 billed_units(Decimal(r["q9"]).scaleb(-QUANTITY_PLACES, EXACT), r["unit_scale"]))}
             for r in rest]
    temp_table_from_rows(conn, "projection_exact_costs", exact, pa.schema([
        ("price_id", pa.int32()), ("unit_scale", pa.int64()), ("q9", pa.string()),
        ("cost", pa.decimal128(38, 4))]))
    run_script(conn, "projection/exact_costs.sql")


def billed_units(quantity: Decimal, unit_scale: int) -> Decimal:
    """The units a price bills for `quantity`: a Stripe price bills the meter's whole units,
    floor(unit_scale × quantity); a config price (unit_scale 0) the quantity itself."""
    if not unit_scale:
        return quantity
    with localcontext(EXACT):
        return (quantity * unit_scale).to_integral_value(rounding=ROUND_FLOOR)


def price_ids(configs: Iterable[PriceConfig]) -> dict[PriceConfig, int]:
    """An id per distinct price (equal prices share one, so they share their lines)."""
    ids: dict[PriceConfig, int] = {}
    for config in configs:
        ids.setdefault(config, len(ids) + 1)
    return ids


def _terms(price_id: int, config: PriceConfig) -> tuple[dict, list[dict]]:
    minor = minor_unit_exponent(config.currency)
    row = {"price_id": price_id, "currency": config.currency, "step": Decimal(1).scaleb(-minor)}
    bands = _bands(config)
    limits = [c for c in (config.minimum_charge, config.maximum_charge) if c is not None]
    scale = max([QUANTITY_PLACES, *(_places(b.base) for b in bands),
                 *(_places(b.unit) + QUANTITY_PLACES for b in bands), *(_places(c) for c in limits)])
    div = 10 ** (scale - minor)
    scaled = [(_scaled(b.base, scale), _scaled(b.unit, scale - QUANTITY_PLACES)) for b in bands]
    min_s, max_s = (None if c is None else _scaled(c, scale) for c in (config.minimum_charge, config.maximum_charge))
    package = {}
    if config.model == "package":
        places = _places(config.package_size)
        package = {"pkg_den": 10**places, "pkg_size9": _scaled(config.package_size, places + QUANTITY_PLACES),
                   "pkg_up": config.package_rounding == "up", "pkg_limit": LIMIT // 10**places - 1}
    headroom = LIMIT - max(abs(base) for base, _ in scaled) - max([0, *(c for c in (min_s, max_s) if c)]) - div // 2 - 1
    n9_limit = headroom // max([1, *(unit for _, unit in scaled)])
    constants = [div, *(abs(v) for pair in scaled for v in pair), *(c for c in (min_s, max_s) if c is not None),
                 package.get("pkg_size9", 0)]
    if n9_limit < 0 or max(constants) >= LIMIT:
        return {**row, "pkg_up": False}, []  # every line of this price goes to price_line
    row.update(div=div, half=div // 2, min_s=min_s, max_s=max_s, n9_limit=n9_limit, **package)
    band_rows = [{"price_id": price_id, "lo9": _bound9(b.lo), "hi9": LIMIT - 1 if b.hi is None else _bound9(b.hi),
                  "base_s": base, "unit_s": unit} for b, (base, unit) in zip(bands, scaled)]
    return row, band_rows


def _bands(config: PriceConfig) -> list[_Band]:
    """The price as bands (lo, hi] of counted units, each charging base + n × unit exactly."""
    zero = Decimal(0)
    if config.model in ("flat", "package"):
        return [_Band(zero, None, zero, config.unit_price)]
    bands, lower, reached = [], zero, zero
    with localcontext(EXACT):
        for tier in config.tiers:
            if config.model == "volume":
                bands.append(_Band(lower, tier.up_to, tier.flat_price, tier.unit_price))
            else:  # graduated, tiered: every tier below charged in full, this one's units up to n
                bands.append(_Band(lower, tier.up_to, reached + tier.flat_price - lower * tier.unit_price,
                                   tier.unit_price))
                if tier.up_to is not None:
                    reached += (tier.up_to - lower) * tier.unit_price + tier.flat_price
            lower = tier.up_to if tier.up_to is not None else lower
    return bands


def _places(value: Decimal) -> int:
    """Decimal places `value` needs (0 for a whole number)."""
    _, digits, exponent = value.as_tuple()
    if not any(digits):
        return 0
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + zeros))


def _scaled(value: Decimal, places: int) -> int:
    """value × 10^places, exact (places >= the places value needs)."""
    return int(value.scaleb(places, EXACT))


def _bound9(bound: Decimal) -> int:
    """A band bound in 1e-9 units, floored: for whole n9, n9 > b ⟺ n9 > floor(b) and n9 <= b
    ⟺ n9 <= floor(b). Bounds beyond LIMIT are never reached within n9_limit."""
    with localcontext(EXACT):
        return min(LIMIT - 1, int((bound.scaleb(QUANTITY_PLACES)).to_integral_value(rounding=ROUND_FLOOR)))
