"""The set-based pricing of `cost_projection` (SQL over price terms, Python past HUGEINT's
range) against the pricing library's `price_line`, to the minor unit, for random prices of
every shape the library accepts and random quantities, including tier bounds and their
neighbours, zero, and quantities too large for SQL."""

from decimal import Decimal

import duckdb
import pyarrow as pa
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from stripemeter_assets.pricing import parse_price_config, price_line
from stripemeter_assets.pricing.money import EXACT
from stripemeter_assets.projection.price_terms import billed_units, load_prices, price_lines
from stripemeter_assets.warehouse import temp_table_from_rows

NANO = Decimal("1e-9")


def amounts(max_places: int = 6, max_digits: int = 6) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda m, p: Decimal(m).scaleb(-p), st.integers(0, 10**max_digits), st.integers(0, max_places))


def bounds(count: int, whole: bool) -> st.SearchStrategy[list[Decimal]]:
    step = st.integers(1, 10**6) if whole else amounts(4, 7).filter(lambda d: d > 0)

    def cumulative(steps):
        out, total = [], Decimal(0)
        for s in steps:
            total += Decimal(s)
            out.append(total)
        return out

    return st.lists(step, min_size=count, max_size=count).map(cumulative)


@st.composite
def native_price(draw) -> dict:
    model = draw(st.sampled_from(["flat", "package", "tiered", "graduated", "volume"]))
    price = {"model": model, "currency": draw(st.sampled_from(["USD", "JPY", "KWD", "CLF", "EUR"]))}
    if model == "flat":
        price["unitPrice"] = str(draw(amounts(9)))
    elif model == "package":
        price.update(unitPrice=str(draw(amounts())), packageSize=str(draw(amounts(3, 5).filter(lambda d: d > 0))),
                     packageRounding=draw(st.sampled_from(["up", "down"])))
    else:
        n = draw(st.integers(1, 5))
        ups = draw(bounds(n - 1, whole=False))
        tiers = []
        for up in [*ups, None]:
            tier = {"upTo": None if up is None else str(up), "unitPrice": str(draw(amounts()))}
            if model != "tiered" and draw(st.booleans()):
                tier["flatPrice"] = str(draw(amounts(2)))
            tiers.append(tier)
        price["tiers"] = tiers
    if draw(st.booleans()):
        low = draw(amounts(3))
        price["minimumCharge"] = str(low)
        if draw(st.booleans()):
            price["maximumCharge"] = str(low + draw(amounts(3, 7)))
    return price


@st.composite
def stripe_price(draw) -> dict:
    currency = draw(st.sampled_from(["usd", "jpy", "kwd", "isk", "eur"]))

    def amount(key: str) -> dict:
        if draw(st.booleans()):
            return {key: draw(st.integers(0, 10**5))}
        return {f"{key}_decimal": str(draw(amounts(12, 8)))}

    if draw(st.booleans()):
        price = {"billing_scheme": "per_unit", "currency": currency, **amount("unit_amount")}
        if draw(st.booleans()):
            price["transform_quantity"] = {"divide_by": draw(st.integers(1, 10**4)),
                                           "round": draw(st.sampled_from(["up", "down"]))}
        return price
    n = draw(st.integers(1, 5))
    ups = draw(bounds(n - 1, whole=True))
    tiers = []
    for up in [*ups, "inf"]:
        tier = {"up_to": up if up == "inf" else int(up)}
        if draw(st.booleans()):
            tier.update(amount("unit_amount"))
        if draw(st.booleans()) or len(tier) == 1:
            tier.update(amount("flat_amount"))
        tiers.append(tier)
    return {"billing_scheme": "tiered", "currency": currency,
            "tiers_mode": draw(st.sampled_from(["graduated", "volume"])), "tiers": tiers}


def interesting_quantities(config, draw) -> list[Decimal]:
    """Zero, every tier bound and its neighbours 1e-9 away, random ones, a few huge ones."""
    marks = [t.up_to for t in config.tiers if t.up_to is not None]
    if config.package_size is not None:
        marks += [config.package_size, config.package_size * 3]
    near = [m + d for m in marks for d in (-NANO, Decimal(0), NANO) if m + d >= 0]
    randoms = draw(st.lists(st.builds(lambda m, p: Decimal(m).scaleb(-p), st.integers(0, 10**15), st.integers(0, 9)),
                            min_size=5, max_size=20))
    huge = draw(st.lists(st.builds(lambda m: Decimal(m).scaleb(-9), st.integers(10**30, 10**38 - 1)), max_size=3))
    return [Decimal(0), *near, *randoms, *huge]


def sql_costs(prices: dict, lines: list[tuple[int, int, Decimal]]) -> dict:
    conn = duckdb.connect()
    try:
        load_prices(conn, prices)
        rows = [{"price_id": p, "unit_scale": s, "q9": str(int(q.scaleb(9, EXACT)))} for p, s, q in set(lines)]
        temp_table_from_rows(conn, "lines_in", rows, pa.schema([
            ("price_id", pa.int32()), ("unit_scale", pa.int64()), ("q9", pa.string())]))
        conn.execute("CREATE TEMP TABLE projection_lines AS "
                     "SELECT price_id, unit_scale, q9::HUGEINT AS q9 FROM lines_in")
        price_lines(conn, prices)
        return {(p, s, Decimal(q).scaleb(-9, EXACT)): cost for p, s, q, cost in
                conn.execute("SELECT price_id, unit_scale, q9::VARCHAR, cost FROM projection_line_costs").fetchall()}
    finally:
        conn.close()


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_sql_pricing_equals_price_line_to_the_minor_unit(data):
    raws = data.draw(st.lists(st.one_of(native_price(), stripe_price()), min_size=1, max_size=3))
    prices = {i + 1: parse_price_config(raw) for i, raw in enumerate(raws)}
    expected = {(pid, scale, q): price_line(config, billed_units(q, scale)) for pid, config in prices.items()
                for q in interesting_quantities(config, data.draw)
                for scale in data.draw(st.sampled_from([(0,), (1,), (0, 1000)]))}
    # cost_projection holds DECIMAL(38, 4): a larger cost fails the run, as it always has.
    expected = {line: cost for line, cost in expected.items() if cost < Decimal("1e33")}
    got = sql_costs(prices, list(expected))
    for line, cost in expected.items():
        assert got[line] == cost, (prices[line[0]], line)


def test_lines_out_of_hugeint_range_are_priced_exactly_in_python():
    # 24-place unit prices scale every amount by 10^33: only small quantities fit in SQL.
    tiny = parse_price_config({"model": "flat", "currency": "USD", "unitPrice": "0.000000000000000000000001"})
    dear = parse_price_config({"model": "graduated", "currency": "USD", "tiers": [
        {"upTo": "1000", "unitPrice": "99999999999999999999", "flatPrice": "1"}, {"upTo": None, "unitPrice": "1"}]})
    big = Decimal("99999999999999999999.123456789")
    lines = [(1, 0, big), (1, 1000, big), (1, 0, Decimal("3")), (2, 0, big), (2, 0, Decimal("999.5")),
             (2, 1000, Decimal("0.0015"))]
    got = sql_costs({1: tiny, 2: dear}, lines)
    assert got[(1, 0, big)] == Decimal("0.00")
    assert got[(1, 1000, big)] == Decimal("0.10")  # 99999999999999999999123 units x 1e-24, half up
    for pid, scale, q in lines:
        assert got[(pid, scale, q)] == price_line({1: tiny, 2: dear}[pid], billed_units(q, scale))
