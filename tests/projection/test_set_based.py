"""The set-based `cost_projection` against the per-counter rules it applies, row by row: many
counters of every aggregation with random exact values (negative credits, one too large for
HUGEINT arithmetic), projected at an instant whose elapsed fraction reduces to no simple
ratio; each row's projection must equal `project_usage` of its own period's exact elapsed
fraction, each cost `price_line` of the tenant's price, each note the rule's."""

import random
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from stripemeter_assets.pricing import price_line
from stripemeter_assets.projection.costs import (
    NOTE_NEGATIVE, NOTE_TOO_EARLY, NOTE_UNPRICED, USAGE_LIMIT, parse_price_book, project_usage)
from tests.conftest import event
from tests.projection.test_projection import PRICES, project

NOW = "2025-03-16T12:34:56.789123Z"
METRICS = ("api_calls", "requests", "storage_gb", "seats", "credits")


def random_events(rng: random.Random) -> list[dict]:
    events = []
    for c in range(12):
        for metric in METRICS:
            for k in range(rng.randint(1, 3)):
                digits = rng.randint(0, 10**rng.randint(1, 21))
                quantity = Decimal(digits).scaleb(-rng.randint(0, 9))
                if metric == "credits" and rng.random() < 0.5:
                    quantity = -quantity
                events.append(event(customer=f"cus_{c:02d}", metric=metric, quantity=str(quantity),
                                    ts=f"2025-03-{rng.randint(2, 15):02d}T{rng.randint(0, 23):02d}:00:00Z",
                                    idempotencyKey=f"{c}-{metric}-{k}"))
    # Past what SQL projects in HUGEINT (Python's exact fallback), still within DECIMAL(38,9).
    events.append(event(customer="cus_big", quantity="1000000000000000000000000000.123456789", idempotencyKey="big"))
    return events


def micros(delta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def test_every_row_follows_the_per_counter_rules_exactly(env, instance):
    project(env, instance, random_events(random.Random(17)), now=NOW)
    book = parse_price_book({"prices": PRICES})
    now = datetime.fromisoformat(NOW.replace("Z", "")).replace(tzinfo=None)
    rows = env.sql("SELECT tenant_id, customer_ref, metric, aggregation, period_start, period_end, usage_to_date, "
                   "projected_usage, is_estimate, priced, currency, cost_to_date, projected_cost, note "
                   "FROM cost_projection")
    assert len(rows) == 12 * len(METRICS) + 1
    for (tenant, customer, metric, aggregation, start, end, to_date, projected, estimate, priced, currency,
         cost_to_date, projected_cost, note) in rows:
        fraction = min(Fraction(1), Fraction(micros(now - start), micros(end - start)))
        expected = project_usage(aggregation, to_date, fraction)
        assert expected is not None and abs(expected) < USAGE_LIMIT
        assert projected == expected, (customer, metric)
        assert estimate is True
        config = book.price(tenant, metric)
        assert priced is (config is not None)
        if config is None:
            assert (currency, cost_to_date, projected_cost, note) == (None, None, None, NOTE_UNPRICED)
        elif to_date < 0:
            assert (cost_to_date, projected_cost, note) == (None, None, NOTE_NEGATIVE)
        else:
            assert currency == config.currency and note is None
            assert cost_to_date == price_line(config, to_date), (customer, metric)
            assert projected_cost == price_line(config, projected), (customer, metric)
    [(big,)] = env.sql("SELECT projected_usage FROM cost_projection WHERE customer_ref = 'cus_big'")
    assert big > Decimal("1e27")


def test_too_early_counters_keep_their_cost_to_date(env, instance):
    # 2025-03-04T02:23:59.999999Z: one microsecond short of 10 % of March.
    project(env, instance, [event(quantity="123.456", ts="2025-03-02T00:00:00Z")], now="2025-03-04T02:23:59.999999Z")
    [(projected, cost, note, fraction)] = env.sql(
        "SELECT projected_usage, cost_to_date, note, elapsed_fraction FROM cost_projection")
    assert (projected, cost, note) == (None, Decimal("1.23"), NOTE_TOO_EARLY)  # 123.456 x 0.01
    assert fraction == Decimal("0.100000")  # 0.0999999996... shown half away from zero to 6 places
