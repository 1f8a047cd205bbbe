"""The derived key (DESIGN §2) is the same in Python (`keys.derive_key`) and
in the ingest's SQL (`sm_derived_key`), for any event the ingest accepts."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest
from hypothesis import given, settings, strategies as st

from stripemeter_assets import warehouse
from stripemeter_assets.ledger import keys


@pytest.fixture(scope="module")
def sql():
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    warehouse.run_script(conn, "ledger/macros.sql")
    yield conn
    conn.close()


# Any Unicode text but lone surrogates (not encodable, never in a JSON file).
texts = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=40)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes)))
timestamps = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    offsets,
)


@st.composite
def quantities(draw) -> str:
    """Decimal texts the ingest accepts: up to 29 integer and 9 fractional
    significant digits, any sign, padded with zeros or in exponent form."""
    int_part = draw(st.text("0123456789", min_size=1, max_size=29))
    frac_part = draw(st.text("0123456789", max_size=9))
    sign = draw(st.sampled_from(["", "-", "+"]))
    value = Decimal(f"{sign}{int_part}.{frac_part or '0'}")
    style = draw(st.sampled_from(["str", "plain", "padded", "exponent"]))
    if style == "str":
        return str(value)
    if style == "plain":
        return format(value, "f")
    if style == "padded":
        return format(value, "f") + ("" if "." in format(value, "f") else ".") + "000"
    return f"{value:e}"


def sql_key(conn, tenant, metric, customer, resource, ts_text, quantity_text):
    # The same parsing macros the ingest applies to a landing file's text.
    return conn.execute(
        "SELECT sm_derived_key(?, ?, ?, nullif(?, ''), sm_timestamp(?), sm_decimal(?)), "
        "sm_timestamp(?) IS NOT NULL AND sm_decimal(?) IS NOT NULL",
        [tenant, metric, customer, resource or "", ts_text, quantity_text, ts_text, quantity_text],
    ).fetchone()


@settings(max_examples=300, deadline=None)
@given(tenant=texts, metric=texts, customer=texts, resource=st.none() | texts, ts=timestamps, quantity=quantities())
def test_python_key_equals_sql_key(sql, tenant, metric, customer, resource, ts, quantity):
    ts_text = ts.isoformat(timespec="microseconds")
    key, parsed = sql_key(sql, tenant, metric, customer, resource, ts_text, quantity)
    assert parsed, (ts_text, quantity)
    assert keys.derive_key(tenant, metric, customer, resource, ts, Decimal(quantity)) == key


@settings(max_examples=200, deadline=None)
@given(ts=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_epoch_micros_equals_sql_epoch_us(sql, ts):
    assert keys.epoch_micros(ts) == sql.execute("SELECT epoch_us(?::TIMESTAMP)", [ts]).fetchone()[0]


def test_naive_timestamp_is_utc():
    naive = datetime(2025, 3, 1, 12, 0, 0, 123456)
    assert keys.derive_key("t", "m", "c", None, naive, 1) == keys.derive_key(
        "t", "m", "c", None, naive.replace(tzinfo=UTC), 1)
    assert keys.derive_key("t", "m", "c", None, naive, 1) == keys.derive_key(
        "t", "m", "c", None, datetime(2025, 3, 1, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))), 1)


def test_derived_key_is_128_bits_of_sha256_hex():
    key = keys.derive_key("acme", "api_calls", "cus_1", None, datetime(2025, 1, 1, tzinfo=UTC), 1)
    assert len(key) == 32 and set(key) <= set("0123456789abcdef")


def test_derived_key_is_stable_across_releases():
    # Pinned: changing the key would re-count every re-sent event.
    key = keys.derive_key("acme", "api_calls", "cus_1", "seat-1",
                          datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), Decimal("100.50"))
    material = "acme\x1fapi_calls\x1fcus_1\x1fseat-1\x1f1735787045678901\x1f100.5"
    assert key == hashlib.sha256(material.encode()).hexdigest()[:32]


@pytest.mark.parametrize(
    ("quantity", "text"),
    [
        (100, "100"),
        (Decimal("100.5"), "100.5"),
        (Decimal("100.500000000"), "100.5"),
        (-3, "-3"),
        (0, "0"),
        (Decimal("-0.000"), "0"),
        (Decimal("1E+2"), "100"),
        ("1E+2", "100"),
        (Decimal("1.5E-3"), "0.0015"),
        (Decimal("12345678901234567890123456789.123456789"), "12345678901234567890123456789.123456789"),
    ],
)
def test_canonical_quantity(quantity, text):
    assert keys.canonical_quantity(quantity) == text


def test_canonical_quantity_matches_sql(sql):
    for text in ["100", "100.5", "-3", "0", "1E+2", "0.000000001", "-0.0", "5.000"]:
        got = sql.execute("SELECT sm_canonical_quantity(sm_decimal(?))", [text]).fetchone()[0]
        assert got == keys.canonical_quantity(text), text
