"""The push plan (`sql/push/plan.sql`) on warehouses written by hand: every
mapped counter is planned to its scaled total (random counters, states and
intents in flight, fractional units, closed periods, last meters, vanished
counters), identifiers name one (counter, revision), and carry-forwards go
into the open period after the counter's own push."""

import hashlib
import math
import random
from datetime import datetime
from decimal import Decimal

from stripemeter_assets.push import outbox, planner
from stripemeter_assets.push.client import KeyStatus
from stripemeter_assets.settings import parse_config
from stripemeter_assets.warehouse import connect, transaction

JAN, FEB, MARCH, APRIL = (datetime(2025, m, 1) for m in (1, 2, 3, 4))
NOW = datetime(2025, 3, 20, 12)
NOW_S, MARCH_S = (int((t - datetime(1970, 1, 1)).total_seconds()) for t in (NOW, MARCH))
KEYS = KeyStatus(primary_present=True, primary_mode="test", test_present=False, test_rejected=False)
SUMS = ("api_calls", "cpu_hours")
CONFIG = parse_config({
    "metrics": {"api_calls": {"aggregation": "sum"}, "cpu_hours": {"aggregation": "sum", "unit_scale": 1000},
                "seats": {"aggregation": "last"}, "storage_gb": {"aggregation": "max", "unit_scale": 10}},
    "stripe": {"meters": [{"tenant": "*", "metric": m, "event_name": m}
                          for m in ("api_calls", "cpu_hours", "seats", "storage_gb")],
               "accounts": {"gamma": "acct_gamma"}},
})
SCALE = {"api_calls": 1, "cpu_hours": 1000, "seats": 1, "storage_gb": 10}


def _plan(conn, *, dry_run=False, periods=(FEB, MARCH)):
    with transaction(conn):
        tally = planner.plan(conn, config=CONFIG, keys=KEYS, periods=list(periods), now=NOW, dry_run=dry_run,
                             run_id="r")
        outbox.write_plan(conn, periods=list(periods), now=NOW)
    cur = conn.execute("SELECT * FROM new_intents ORDER BY period_start, tenant_id, metric, customer_ref, revision")
    cols = [d[0] for d in cur.description]
    return tally, [dict(zip(cols, r)) for r in cur.fetchall()]


def _usage(conn, metric, ref, period, end, value, *, tenant="acme"):
    conn.execute("INSERT INTO period_usage VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                 [tenant, metric, ref, period, end, "sum" if metric in SUMS else "last", value, period, NOW])


def _state(conn, metric, ref, period, pushed, *, last=None, revision=1):
    conn.execute("INSERT INTO stripe_push_state VALUES ('platform', 'test', 'acme', ?, ?, ?, ?, ?, ?, 0, ?, NULL, "
                 "?, ?)", [ref, metric, period, ref, metric, pushed, last, revision, NOW])


def _pending(conn, metric, ref, period, end, value, *, kind="delta", revision=2):
    conn.execute("INSERT INTO stripe_pushes (identifier, account, mode, shadow, tenant_id, customer_ref, "
                 "stripe_customer, metric, event_name, meter_formula, unit_scale, period_start, period_end, "
                 "revision, kind, value, target_total, event_ts, status, created_at) VALUES (?, 'platform', "
                 "'test', false, 'acme', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, epoch(?::TIMESTAMP) + 3600, 'pending', ?)",
                 [f"smp_{metric}_{ref}_{revision}", ref, ref, metric, metric, "sum" if kind == "delta" else "last",
                  SCALE[metric], period, end, revision, kind, value, value, period, NOW])


def _fill(conn, rng: random.Random) -> dict:
    """Random counters; returns what the plan must do with each: (metric, ref, period) ->
    (kind, value, revision) of its intent, or None when it is in step."""
    expected = {}
    for i in range(400):
        metric = rng.choice(list(SCALE))
        ref = f"cus_{i:04d}" if i % 9 else f"ext-{i}"  # every ninth unmapped
        period, end = (FEB, MARCH) if i % 5 == 0 else (MARCH, APRIL)  # February is closed on the 20th of March
        value = Decimal(rng.choice([0, 1, 7, 250])) + Decimal(rng.randrange(0, 1000)) / 1000
        since_close = Decimal(rng.choice([0, 0, 2])) if period == FEB else Decimal(0)
        _usage(conn, metric, ref, period, end, value)
        if since_close:  # held: February stays at its total at close
            conn.execute("INSERT INTO period_adjustments VALUES ('acme', ?, ?, ?, 'sum', 0, ?, ?, 'hold', 'held', "
                         "NULL, ?, 'r')", [metric, ref, period, since_close, since_close, NOW])
        units = math.floor((value - since_close) * SCALE[metric])
        acked = units - rng.choice([0, 0, 1, 3])       # what Stripe has or will have, acknowledged or in flight
        in_flight = rng.choice([0, 0, 0, 1, 2])
        has_state = rng.random() < 0.9
        state_revision = rng.choice([1, 4])
        if has_state:
            _state(conn, metric, ref, period, acked - in_flight, last=None if metric in SUMS else acked - in_flight,
                   revision=state_revision)
        if in_flight:
            _pending(conn, metric, ref, period, end, in_flight if metric in SUMS else acked,
                     kind="delta" if metric in SUMS else "value")
        if not ref.startswith("cus_"):
            continue
        revision = max(state_revision if has_state else 0, 2 if in_flight else 0) + 1
        if metric in SUMS:
            pushed = (acked - in_flight if has_state else 0) + in_flight
            expected[(metric, ref, period)] = None if units == pushed else ("delta", units - pushed, revision)
        else:
            latest = acked if in_flight else (acked - in_flight if has_state else None)
            same = units == latest or (latest is None and units == 0)
            expected[(metric, ref, period)] = None if same else ("value", units, revision)
    for i in range(3):  # pushed, row gone since: pushed back to zero
        _state(conn, "api_calls", f"cus_gone{i}", MARCH, 4)
        expected[("api_calls", f"cus_gone{i}", MARCH)] = ("delta", -4, 2)
    return expected


def test_every_mapped_counter_is_planned_to_its_scaled_total(tmp_path):
    for seed in range(3):
        with connect(str(tmp_path / f"w{seed}.duckdb")) as conn:
            expected = _fill(conn, random.Random(seed))
            tally, intents = _plan(conn)
            unmapped, examples = planner.plan_rows(conn, "unmapped", 1000)

        planned = {(i["metric"], i["customer_ref"], i["period_start"]): (i["kind"], i["value"], i["revision"])
                   for i in intents}
        assert planned == {k: v for k, v in expected.items() if v is not None}
        assert 0 < len(planned) < len(expected)
        assert all(i["target_total"] == i["value"] or i["kind"] == "delta" for i in intents)
        assert all(i["status"] == "pending" for i in intents)
        assert all(i["event_ts"] == (NOW_S - 300 if i["period_start"] == MARCH else MARCH_S - 1) for i in intents)
        assert unmapped == len(examples) == sum(1 for i in range(400) if i % 9 == 0)
        assert all(ref.startswith("ext-") for _, _, ref in examples)
        assert tally == planner.Tally()  # nothing deferred, too old or carried


def test_the_plan_counts_pending_intents_as_in_flight(tmp_path):
    with connect(str(tmp_path / "w.duckdb")) as conn:
        _usage(conn, "api_calls", "cus_A", MARCH, APRIL, Decimal(12))
        _state(conn, "api_calls", "cus_A", MARCH, 5, revision=2)
        _pending(conn, "api_calls", "cus_A", MARCH, APRIL, 4, revision=3)
        _, [intent] = _plan(conn)
    assert (intent["value"], intent["target_total"], intent["revision"]) == (3, 12, 4)
    assert intent["event_ts"] == NOW_S - 300  # the latest second ≥ 5 min before now


def test_identifiers_name_one_counter_and_revision_and_stay_the_same_when_replanned(tmp_path):
    with connect(str(tmp_path / "w.duckdb")) as conn:
        for tenant in ("acme", "gamma"):      # gamma pushes to its connected account
            for metric in ("api_calls", "seats"):
                for period, end in ((FEB, MARCH), (MARCH, APRIL)):
                    _usage(conn, metric, "cus_A", period, end, Decimal(3), tenant=tenant)
        _state(conn, "seats", "cus_A", MARCH, 0, last=1, revision=6)
        _, first = _plan(conn, dry_run=True)
        _, again = _plan(conn, dry_run=True)

    assert [i["identifier"] for i in first] == [i["identifier"] for i in again]
    assert len({i["identifier"] for i in first}) == len(first) == 8
    for i in first:
        fields = (i["account"], i["mode"], i["tenant_id"], i["customer_ref"], i["metric"],
                  i["period_start"].strftime("%Y-%m-%dT%H:%M:%SZ"), str(i["revision"]))
        assert i["identifier"] == "smp_" + hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
        assert len(i["identifier"]) <= 100  # Stripe's limit for a meter event identifier
    assert {i["account"] for i in first} == {"platform", "acct_gamma"}
    assert max(i["revision"] for i in first) == 7


def test_carry_forwards_follow_the_counters_own_push_in_the_open_period(tmp_path):
    def adjustment(metric, ref, origin, delta, aggregation="sum"):
        conn.execute("INSERT INTO period_adjustments VALUES ('acme', ?, ?, ?, ?, 0, ?, ?, 'carry_forward', 'open', "
                     "NULL, ?, 'r')", [metric, ref, origin, aggregation, delta, delta, NOW])

    with connect(str(tmp_path / "w.duckdb")) as conn:
        _usage(conn, "api_calls", "cus_A", MARCH, APRIL, Decimal(10))
        _state(conn, "api_calls", "cus_A", MARCH, 4, revision=3)
        adjustment("api_calls", "cus_A", FEB, Decimal(2))
        adjustment("api_calls", "cus_A", FEB, Decimal("0.5"))
        adjustment("api_calls", "cus_A", JAN, Decimal(1))
        adjustment("cpu_hours", "cus_A", FEB, Decimal("0.0004"))   # 0.4 of a unit: nothing to send
        adjustment("seats", "cus_A", FEB, Decimal(2), "last")     # a value has nothing to carry
        adjustment("api_calls", "ext-1", FEB, Decimal(2))          # no Stripe customer
        tally, intents = _plan(conn, periods=[MARCH])   # the closed periods' own pushes are done
        statuses = dict(conn.execute("SELECT metric || '/' || customer_ref, list(DISTINCT status) "
                                     "FROM period_adjustments GROUP BY ALL").fetchall())

    assert [(i["kind"], i["origin_period"], i["value"], i["target_total"], i["revision"]) for i in intents] == [
        ("delta", None, 6, 10, 4),
        ("carry_forward", JAN, 1, 1, 5),
        ("carry_forward", FEB, 2, 3, 6),   # floor(2.5): the half unit is not pushed
    ]
    assert all(i["period_start"] == MARCH and i["event_ts"] == NOW_S - 300 for i in intents)
    assert tally == planner.Tally(carry_forwards=2, carry_unmapped=1, carry_not_summable=1)
    assert statuses == {"api_calls/cus_A": ["open"], "cpu_hours/cus_A": ["pushed"], "seats/cus_A": ["open"],
                        "api_calls/ext-1": ["open"]}
