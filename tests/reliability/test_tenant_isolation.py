"""Tenants never see each other: keys are scoped per tenant, a replay of one
tenant touches only its counters, and tenant ids full of SQL or LIKE
metacharacters match nobody else."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from stripemeter_assets.counters.recompute import recompute_days, recompute_periods
from stripemeter_assets.definitions import defs
from stripemeter_assets.ledger.keys import derive_key
from stripemeter_assets.settings import load_config
from stripemeter_assets.warehouse import connect, transaction
from tests.conftest import NOW, event, utc
from tests.reliability.conftest import assert_ledger_consistent

MARCH, APRIL = datetime(2025, 3, 1), datetime(2025, 4, 1)


def _recompute_all(env) -> None:
    now = utc(NOW)
    with connect(str(env.warehouse)) as conn, transaction(conn):
        recompute_days(conn, MARCH, APRIL, now)
        recompute_periods(conn, load_config(), MARCH, APRIL, now, "setup")


def _counters(env) -> dict[str, list[tuple]]:
    by_tenant: dict[str, list[tuple]] = {}
    for row in env.sql("SELECT tenant_id, metric, customer_ref, value, event_count FROM period_usage ORDER BY ALL"):
        by_tenant.setdefault(row[0], []).append(row)
    for row in env.sql("SELECT tenant_id, * EXCLUDE (tenant_id, computed_at) FROM daily_usage ORDER BY ALL"):
        by_tenant.setdefault(row[0], []).append(("daily",) + row)
    return by_tenant


def _replay(instance, tenant: str | None, dry_run: bool = False):
    config = {"start": "2025-03-01", "end": "2025-04-01", "tenant": tenant, "dry_run": dry_run}
    result = defs.resolve_job_def("replay_job").execute_in_process(
        instance=instance, run_config={"ops": {"replay_counters": {"config": config}}})
    assert result.success
    return result.output_for_node("replay_counters")


def test_the_same_explicit_key_in_two_tenants_never_dedupes_or_conflicts_across_them(env):
    env.drop_jsonl("a.jsonl", [event(tenant="A", quantity="5", idempotencyKey="k"),
                               event(tenant="B", quantity="7", customer="cus_B", idempotencyKey="k")])
    env.ingest("b1")
    # A re-sends its event (duplicate); B sends a different event under its key (conflict, in B only).
    env.drop_jsonl("b.jsonl", [event(tenant="A", quantity="5", idempotencyKey="k"),
                               event(tenant="B", quantity="9", customer="cus_B", idempotencyKey="k")])
    env.drop_parquet("c.parquet", [event(tenant="C", quantity="11", idempotencyKey="k")])
    env.ingest("b2")
    assert env.sql("SELECT tenant_id, quantity FROM events ORDER BY 1") == [
        ("A", Decimal(5)), ("B", Decimal(7)), ("C", Decimal(11))]
    assert env.sql("SELECT tenant_id, reason FROM quarantine") == [("B", "idempotency_conflict")]
    assert env.sql("SELECT path, rows_loaded, rows_duplicate, rows_quarantined FROM landing_files "
                   "WHERE batch_id = 'b2' AND status = 'loaded' ORDER BY 1") == [
        (str(env.landing / "b.jsonl"), 0, 1, 1), (str(env.landing / "c.parquet"), 1, 0, 0)]
    assert_ledger_consistent(env)


def test_identical_events_without_keys_in_two_tenants_all_land(env):
    fields = dict(metric="api_calls", customer="cus_X", quantity="3", ts="2025-03-10T10:00:00.123456Z",
                  resourceId="r1")
    env.drop_jsonl("a.jsonl", [event(tenant="A", **fields)])
    env.ingest("b1")
    env.drop_jsonl("b.jsonl", [event(tenant="B", **fields), event(tenant="A", **fields)])
    env.ingest("b2")
    rows = env.sql("SELECT tenant_id, idempotency_key, batch_id FROM events ORDER BY 1")
    ts = utc(fields["ts"])
    assert rows == [("A", derive_key("A", "api_calls", "cus_X", "r1", ts, Decimal(3)), "b1"),
                    ("B", derive_key("B", "api_calls", "cus_X", "r1", ts, Decimal(3)), "b2")]
    assert env.sql("SELECT rows_loaded, rows_duplicate FROM landing_files WHERE batch_id = 'b2' "
                   "AND status = 'loaded'") == [(1, 1)]


def test_a_derived_key_collision_built_with_the_field_separator_never_crosses_tenants(env):
    """tenant "a\\x1fb" + metric "c" and tenant "a" + metric "b\\x1fc" hash the
    same key material; they are different tenants, so both events land."""
    env.drop_jsonl("a.jsonl", [event(tenant="a\x1fb", metric="c"), event(tenant="a", metric="b\x1fc")])
    env.ingest()
    rows = env.sql("SELECT tenant_id, metric, idempotency_key FROM events ORDER BY 1")
    assert [(t, m) for t, m, _ in rows] == [("a", "b\x1fc"), ("a\x1fb", "c")]
    assert rows[0][2] == rows[1][2]  # the same derived key, kept apart by the tenant


def test_a_derived_key_collision_inside_one_tenant_is_never_silent(env):
    """metric "m\\x1fcus" + customer "x" and metric "m" + customer "cus\\x1fx"
    are two events with the same derived-key material: the second must land
    or be quarantined with a reason, never vanish."""
    env.drop_jsonl("a.jsonl", [event(metric="m\x1fcus", customer="x"), event(metric="m", customer="cus\x1fx")])
    result = env.ingest()
    landed = env.sql("SELECT metric, customer_ref FROM events ORDER BY 1")
    quarantined = env.sql("SELECT row_number, reason FROM quarantine")
    assert len(landed) + len(quarantined) == 2
    assert result.total("rows_duplicate") == 0
    assert all(reason for _, reason in quarantined)


def _late_setup(env, tenants: list[str]) -> None:
    """Per tenant: an on-time event and one 9 days behind its watermark
    (beyond the 48 h window: pending until a replay)."""
    env.drop_jsonl("on-time.jsonl", [event(tenant=t, customer="cus_1", quantity=str(10 + i), idempotencyKey="on-time",
                                           ts="2025-03-10T10:00:00Z") for i, t in enumerate(tenants)])
    env.ingest("b1")
    env.drop_jsonl("late.jsonl", [event(tenant=t, customer="cus_1", quantity=str(100 + i), idempotencyKey="late",
                                        ts="2025-03-01T10:00:00Z") for i, t in enumerate(tenants)])
    env.ingest("b2")
    assert env.sql("SELECT count(*) FROM late_events WHERE status = 'pending'") == [(len(tenants),)]
    _recompute_all(env)


def test_a_tenant_replay_changes_only_that_tenants_counters(env, instance):
    tenants = ["A", "B", "a", "A "]
    _late_setup(env, tenants)
    before = _counters(env)

    dry = _replay(instance, "A", dry_run=True)
    assert [(d.tenant_id, d.old, d.new) for d in dry.diffs] == [("A", Decimal(10), Decimal(110))]
    assert _counters(env) == before

    result = _replay(instance, "A")
    assert [(d.tenant_id, d.delta) for d in result.diffs] == [("A", Decimal(100))]
    after = _counters(env)
    assert {t: rows for t, rows in after.items() if t != "A"} == {t: rows for t, rows in before.items() if t != "A"}
    assert [r[3:5] for r in after["A"] if r[0] != "daily"] == [(Decimal(110), 2)]
    assert env.sql("SELECT tenant_id, status FROM late_events ORDER BY 1") == [
        ("A", "applied"), ("A ", "pending"), ("B", "pending"), ("a", "pending")]


@pytest.mark.parametrize("tenant", [
    "A' OR '1'='1",
    "B'; DELETE FROM period_usage; --",
    "%",
    "_",
    "A%",
    "\\",
    "NULL",
    '"A"',
])
def test_a_tenant_id_full_of_sql_or_like_metacharacters_matches_only_itself(env, instance, tenant):
    tenants = ["A", "B", "AB", tenant]
    _late_setup(env, tenants)
    before = _counters(env)
    result = _replay(instance, tenant)
    assert [d.tenant_id for d in result.diffs] == [tenant]
    after = _counters(env)
    assert set(after) == set(before)
    for other in set(tenants) - {tenant}:
        assert after[other] == before[other], other
    assert env.sql("SELECT tenant_id FROM late_events WHERE status = 'applied'") == [(tenant,)]
    assert env.sql("SELECT count(*) FROM events") == [(2 * len(tenants),)]
    assert env.sql("SELECT DISTINCT tenant_id FROM events ORDER BY 1") == sorted((t,) for t in tenants)
