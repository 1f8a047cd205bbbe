"""`cost_projection` through real catch-up and materialization runs on DuckDB.

March 2025 has 31 days, so 2025-03-16T12:00Z is exactly 50 % of the period and
2025-03-04T02:24Z exactly 10 %. Expected values are worked out by hand in each test.
"""

from decimal import Decimal
from fractions import Fraction

import dagster as dg
import pytest

from stripemeter_assets.projection.assets import cost_projection
from stripemeter_assets.definitions import defs
from stripemeter_assets.projection.costs import project_usage
from stripemeter_assets.resources import WarehouseResource
from stripemeter_assets.cli.runner import catch_up
from tests.conftest import BASE_CONFIG, event

HALF = "2025-03-16T12:00:00Z"
PARTITION = "2025-03-01"
GRADUATED = {"model": "graduated", "currency": "USD", "tiers": [
    {"upTo": 10000, "unitPrice": "0.01"},
    {"upTo": None, "unitPrice": "0.008", "flatPrice": "5"},
]}
PRICES = {
    "api_calls": GRADUATED,
    "storage_gb": {"model": "flat", "currency": "USD", "unitPrice": "0.02"},
    "seats": {"model": "flat", "currency": "USD", "unitPrice": "12"},
}
COLUMNS = ("usage_to_date", "elapsed_fraction", "projected_usage", "is_estimate", "priced", "currency",
           "cost_to_date", "projected_cost", "note")


def project(env, instance, events, now=HALF, prices=PRICES, **config):
    """Land `events`, catch up (period_usage), then materialize March's cost_projection at `now`."""
    env.write_config({**BASE_CONFIG, "prices": prices, **config})
    env.set_now(now)
    env.drop_jsonl(f"events-{len(list(env.landing.iterdir()))}.jsonl", events)
    assert not catch_up(defs, instance, settle=False).failed
    return materialize(instance)


def materialize(instance, raise_on_error=True):
    return dg.materialize([cost_projection], partition_key=PARTITION, instance=instance,
                          resources={"warehouse": WarehouseResource()}, raise_on_error=raise_on_error)


def row(env, metric="api_calls", customer="cus_A", tenant="acme"):
    found = env.sql(f"SELECT {', '.join(COLUMNS)} FROM cost_projection "
                    "WHERE tenant_id = ? AND customer_ref = ? AND metric = ?", [tenant, customer, metric])
    assert len(found) == 1, found
    return dict(zip(COLUMNS, found[0]))


def metadata(result):
    [mat] = result.get_asset_materialization_events()
    return {key: value.value for key, value in mat.materialization.metadata.items()}


def api_calls(*quantities, customer="cus_A", tenant="acme"):
    return [event(tenant=tenant, customer=customer, quantity=str(q), ts=f"2025-03-{2 + i:02d}T10:00:00Z",
                  idempotencyKey=f"{tenant}-{customer}-{i}") for i, q in enumerate(quantities)]


def test_usage_to_date_at_half_the_period_projects_to_twice_as_much(env, instance):
    project(env, instance, api_calls(2500, 3500))
    r = row(env)
    assert r["usage_to_date"] == Decimal("6000")
    assert r["elapsed_fraction"] == Decimal("0.5")
    assert r["projected_usage"] == Decimal("12000")
    assert r["is_estimate"] is True


def test_costs_go_through_graduated_tiers(env, instance):
    project(env, instance, api_calls(2500, 3500))
    r = row(env)
    # to date 6000 calls, all in tier 1: 6000 x 0.01 = 60.00 (tier 2 not reached, no flat fee)
    assert r["cost_to_date"] == Decimal("60.00")
    # projected 12000: 10000 x 0.01 = 100 + 2000 x 0.008 = 16 + tier 2's flat fee 5 = 121.00
    assert r["projected_cost"] == Decimal("121.00")
    assert (r["currency"], r["priced"], r["note"]) == ("USD", True, None)


def test_no_projection_in_the_first_tenth_of_the_period_but_cost_to_date_is_shown(env, instance):
    # 2025-03-04T00:00Z is 3 of 31 days: 9.68 % < 10 %
    project(env, instance, api_calls(500), now="2025-03-04T00:00:00Z")
    r = row(env)
    assert r["projected_usage"] is None and r["projected_cost"] is None
    assert r["is_estimate"] is False
    assert r["cost_to_date"] == Decimal("5.00")  # 500 x 0.01
    assert "10 %" in r["note"]


def test_projection_starts_at_exactly_ten_percent(env, instance):
    # 3.1 days = 3 days 2 h 24 min into March: elapsed fraction exactly 0.1
    project(env, instance, api_calls(500), now="2025-03-04T02:24:00Z")
    r = row(env)
    assert r["elapsed_fraction"] == Decimal("0.1")
    assert r["projected_usage"] == Decimal("5000")  # 500 / 0.1
    assert r["projected_cost"] == Decimal("50.00")  # 5000 x 0.01


def test_max_and_last_metrics_project_their_current_value(env, instance):
    project(env, instance, [
        event(metric="storage_gb", quantity="10", ts="2025-03-02T00:00:00Z"),
        event(metric="storage_gb", quantity="30", ts="2025-03-03T00:00:00Z"),
        event(metric="storage_gb", quantity="20", ts="2025-03-04T00:00:00Z"),
        event(metric="seats", quantity="4", ts="2025-03-02T00:00:00Z"),
        event(metric="seats", quantity="3", ts="2025-03-04T00:00:00Z"),
    ])
    storage, seats = row(env, "storage_gb"), row(env, "seats")
    assert (storage["usage_to_date"], storage["projected_usage"]) == (Decimal("30"), Decimal("30"))  # max
    assert (seats["usage_to_date"], seats["projected_usage"]) == (Decimal("3"), Decimal("3"))  # last
    assert (storage["projected_cost"], seats["projected_cost"]) == (Decimal("0.60"), Decimal("36.00"))
    assert storage["is_estimate"] is True and seats["is_estimate"] is True


def test_unpriced_metric_is_flagged_and_not_costed(env, instance):
    result = project(env, instance, [event(metric="requests", quantity="1", ts="2025-03-02T00:00:00Z"),
                                     event(metric="requests", quantity="1", ts="2025-03-03T00:00:00Z",
                                           idempotencyKey="r2")])
    r = row(env, "requests")
    assert (r["priced"], r["currency"], r["cost_to_date"], r["projected_cost"]) == (False, None, None, None)
    assert r["note"] == "no price configured for this metric"
    assert r["projected_usage"] == Decimal("4")  # count 2 at 50 %: usage is still projected
    assert metadata(result)["unpriced_metrics"] == "requests"


def test_non_terminating_projection_is_rounded_once_to_counter_scale(env, instance):
    # 7 of 31 days: 1 / (7/31) = 31/7 = 4.428571428571... -> 4.428571429
    project(env, instance, api_calls(1), now="2025-03-08T00:00:00Z")
    assert row(env)["projected_usage"] == Decimal("4.428571429")
    assert project_usage("sum", Decimal(1), Fraction(7, 31)) == Decimal("4.428571429")


def test_money_is_rounded_half_up_to_minor_units(env, instance):
    prices = {"api_calls": {"model": "flat", "currency": "USD", "unitPrice": "0.0125"}}
    project(env, instance, api_calls(3), prices=prices)
    r = row(env)
    assert r["cost_to_date"] == Decimal("0.04")  # 3 x 0.0125 = 0.0375
    assert r["projected_cost"] == Decimal("0.08")  # 6 x 0.0125 = 0.075


def test_zero_decimal_currency_rounds_to_whole_units(env, instance):
    prices = {"api_calls": {"model": "flat", "currency": "JPY", "unitPrice": "0.5"}}
    project(env, instance, api_calls(3), prices=prices)
    r = row(env)
    assert (r["currency"], r["cost_to_date"], r["projected_cost"]) == ("JPY", Decimal("2"), Decimal("3"))  # 1.5, 3


def test_ended_period_is_not_an_estimate(env, instance):
    project(env, instance, api_calls(2500, 3500), now="2025-04-02T00:00:00Z")
    r = row(env)
    assert (r["elapsed_fraction"], r["projected_usage"], r["is_estimate"]) == (Decimal("1"), Decimal("6000"), False)


def test_rematerializing_replaces_the_periods_rows(env, instance):
    project(env, instance, api_calls(2500, 3500))
    env.set_now("2025-03-24T06:00:00Z")  # 23.25 of 31 days = 75 %
    materialize(instance)
    assert env.sql("SELECT count(*) FROM cost_projection") == [(1,)]
    assert row(env)["projected_usage"] == Decimal("8000")  # 6000 / 0.75


def test_tenant_override_prices_that_tenants_counters(env, instance):
    flat = {"model": "flat", "currency": "USD", "unitPrice": "0.02"}
    project(env, instance, api_calls(1000) + api_calls(1000, tenant="beta"),
            prices_by_tenant={"beta": {"api_calls": flat}})
    assert row(env)["cost_to_date"] == Decimal("10.00")  # default graduated: 1000 x 0.01
    assert row(env, tenant="beta")["cost_to_date"] == Decimal("20.00")  # override: 1000 x 0.02


def test_metadata_counts_customers_totals_per_currency_and_lists_the_top_customers(env, instance):
    result = project(env, instance, api_calls(2500, 3500) + api_calls(1000, customer="cus_B"))
    meta = metadata(result)
    assert meta["customers"] == 2
    # cus_A projects 121.00 (see above), cus_B 2000 calls x 0.01 = 20.00
    assert meta["projected_cost"] == {"USD": "141.00"}
    assert meta["cost_to_date"] == {"USD": "70.00"}
    table = meta["top_customers"].splitlines()
    assert table[2] == "| acme | cus_A | USD | 60.00 | 121.00 |"
    assert table[3] == "| acme | cus_B | USD | 10.00 | 20.00 |"


def test_invalid_price_fails_the_run_naming_the_field(env, instance):
    project(env, instance, api_calls(1))
    bad = {"api_calls": {"model": "graduated", "currency": "USD", "tiers": [{"upTo": 10, "unitPrice": "1"}]}}
    env.write_config({**BASE_CONFIG, "prices": bad})
    with pytest.raises(dg.Failure, match=r"prices\.api_calls\.tiers\[0\]\.upTo"):
        materialize(instance)
