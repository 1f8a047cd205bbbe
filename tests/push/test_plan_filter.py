"""The push plans only the counters that may differ from Stripe: SQL
(`push/plan_counters.sql`) leaves out the counters provably in step, and the
plan it gives is the plan of every counter — on random counters, states and
intents in flight, with fractional units, closed periods and last meters."""

import random
from datetime import datetime
from decimal import Decimal

from stripemeter_assets.push import outbox
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.push.planner import CounterRow, plan
from stripemeter_assets.settings import parse_config
from stripemeter_assets.warehouse import connect, query

FEB, MARCH, APRIL = datetime(2025, 2, 1), datetime(2025, 3, 1), datetime(2025, 4, 1)
NOW = datetime(2025, 3, 20, 12)
KEYS = KeyStatus(primary_present=True, primary_mode="test", test_present=False, test_rejected=False)
CONFIG = parse_config({
    "metrics": {"api_calls": {"aggregation": "sum"}, "cpu_hours": {"aggregation": "sum", "unit_scale": 1000},
                "seats": {"aggregation": "last"}, "storage_gb": {"aggregation": "max", "unit_scale": 10}},
    "stripe": {"meters": [{"tenant": "*", "metric": m, "event_name": m}
                          for m in ("api_calls", "cpu_hours", "seats", "storage_gb")]},
})
SCALE = {"api_calls": 1, "cpu_hours": 1000, "seats": 1, "storage_gb": 10}


def _fill(conn, rng: random.Random) -> int:
    usage, states, pending = [], [], []
    for i in range(400):
        metric = rng.choice(list(SCALE))
        ref = f"cus_{i:04d}" if i % 9 else f"ext-{i}"  # every ninth unmapped
        period, end = (FEB, MARCH) if i % 5 == 0 else (MARCH, APRIL)  # February is closed on the 20th of March
        value = Decimal(rng.choice([0, 1, 7, 250])) + Decimal(rng.randrange(0, 1000)) / 1000
        since_close = Decimal(rng.choice([0, 0, 2])) if period == FEB else Decimal(0)
        usage.append((metric, ref, period, end, "sum" if SCALE[metric] and metric in ("api_calls", "cpu_hours")
                      else "last", value))
        units = int((value - since_close) * SCALE[metric])  # floor for non-negative values
        in_step = rng.random() < 0.6
        acked = units if in_step else units - rng.choice([1, 3])
        delta = 0
        if rng.random() < 0.2:  # part of it still in flight
            delta = rng.choice([1, 2])
            acked -= delta
        if rng.random() < 0.9:
            states.append((metric, ref, period, acked, None if metric in ("api_calls", "cpu_hours") else acked))
        if delta:
            pending.append((metric, ref, period, end, delta, acked + delta))
        if since_close:
            conn.execute("INSERT INTO period_adjustments VALUES ('acme', ?, ?, ?, 'sum', 0, ?, ?, 'carry', 'held', "
                         "NULL, ?, 'r')", [metric, ref, period, since_close, since_close, NOW])
    states += [("api_calls", f"cus_gone{i}", MARCH, 4, None) for i in range(3)]  # pushed, row gone since
    conn.executemany("INSERT INTO period_usage VALUES ('acme', ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                     [[m, r, p, e, a, v, p, NOW] for m, r, p, e, a, v in usage])
    conn.executemany("INSERT INTO stripe_push_state VALUES ('platform', 'test', 'acme', ?, ?, ?, ?, ?, ?, 0, ?, NULL, "
                     "1, ?)", [[r, m, p, r, m, t, last, NOW] for m, r, p, t, last in states])
    for m, r, p, e, delta, total in pending:
        last = m not in ("api_calls", "cpu_hours")
        conn.execute("INSERT INTO stripe_pushes (identifier, account, mode, shadow, tenant_id, customer_ref, "
                     "stripe_customer, metric, event_name, meter_formula, unit_scale, period_start, period_end, "
                     "revision, kind, value, target_total, event_ts, status, created_at) VALUES (?, 'platform', "
                     "'test', false, 'acme', ?, ?, ?, ?, ?, ?, ?, ?, 2, ?, ?, ?, 1741000000, 'pending', ?)",
                     [f"smp_{m}_{r}", r, r, m, m, "last" if last else "sum", SCALE[m], p, e,
                      "value" if last else "delta", total if last else delta, total, NOW])
    return len(usage)


def _intents(p):
    return sorted((i.identifier, i.kind, i.value, i.target_total, i.status) for i in p.intents)


def test_the_counters_left_out_are_exactly_those_the_planner_plans_nothing_for(tmp_path):
    for seed in range(3):
        with connect(str(tmp_path / f"w{seed}.duckdb")) as conn:
            total = _fill(conn, random.Random(seed))
            in_flight = outbox.load_in_flight(conn)
            every = [CounterRow(**r) for r in query(conn, "push/counters.sql", periods=[FEB, MARCH])]
            every_state = outbox.load_states(conn, [FEB, MARCH])
            counters, vanished = outbox.load_counters_to_plan(conn, CONFIG, KEYS, [FEB, MARCH], NOW)
            states = outbox.load_states(conn, [FEB, MARCH], pushed=[FEB, MARCH])
            common = dict(in_flight=in_flight, adjustments=[], config=CONFIG, mapping=CONFIG.stripe, keys=KEYS,
                          now=NOW, vanished=vanished)
            full = plan(counters=every, states=every_state, **common)
            filtered = plan(counters=counters, states=states, **common)

            assert len(every) == total and len(vanished) == 3 and len(states) < len(every_state)
            assert _intents(filtered) == _intents(full)
            assert outbox.load_unmapped(conn, 1000) == (len(full.unmapped), full.unmapped)
            gone = {(k.metric, k.customer_ref, k.period_start) for k in vanished}
            planned = {(i.metric, i.customer_ref, i.period_start) for i in full.intents} - gone
            looked_at = {(c.metric, c.customer_ref, c.period_start) for c in counters}
            # Only what needs a plan is looked at: the counters planned (or deferred: no allowed
            # second yet); the unmapped ones are counted in SQL; the vanished ones are pushed to zero.
            assert planned <= looked_at
            assert len(looked_at) == len(planned) + full.deferred
            assert 0 < len(counters) < total
