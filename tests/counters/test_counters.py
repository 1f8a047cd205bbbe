"""Counters: aggregations, late data through the sensors, replay, backfills,
closed periods, and recomputation equal to the incremental path."""

from datetime import datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from stripemeter_assets.counters.recompute import recompute_days, recompute_periods, replay
from stripemeter_assets.definitions import defs
from stripemeter_assets.cli.runner import catch_up
from stripemeter_assets.settings import load_config
from stripemeter_assets.warehouse import connect, transaction
from tests.conftest import NOW, Env, event, utc


def _period(env, metric="api_calls", customer="cus_A"):
    rows = env.sql("SELECT value, event_count FROM period_usage WHERE metric = ? AND customer_ref = ?",
                   [metric, customer])
    return rows[0] if rows else None


def test_each_aggregation_over_a_period(env, instance):
    env.drop_jsonl("a.jsonl", [
        event(metric="api_calls", quantity="5", ts="2025-03-02T00:00:00Z"),
        event(metric="api_calls", quantity="2.25", ts="2025-03-03T00:00:00Z"),
        event(metric="requests", quantity="9", ts="2025-03-02T00:00:00Z"),
        event(metric="requests", quantity="9", ts="2025-03-04T00:00:00Z", idempotencyKey="r2"),
        event(metric="storage_gb", quantity="10", ts="2025-03-02T00:00:00Z"),
        event(metric="storage_gb", quantity="30", ts="2025-03-03T00:00:00Z"),
        event(metric="storage_gb", quantity="20", ts="2025-03-04T00:00:00Z"),
        event(metric="seats", quantity="4", ts="2025-03-02T00:00:00Z"),
        event(metric="seats", quantity="3", ts="2025-03-04T00:00:00Z"),
        event(metric="credits", quantity="-2", ts="2025-03-02T00:00:00Z"),
        event(metric="credits", quantity="5", ts="2025-03-03T00:00:00Z"),
    ])
    assert not catch_up(defs, instance, settle=False).failed
    assert _period(env, "api_calls") == (Decimal("7.25"), 2)
    assert _period(env, "requests") == (Decimal("2"), 2)
    assert _period(env, "storage_gb") == (Decimal("30"), 3)
    assert _period(env, "seats") == (Decimal("3"), 2)
    assert _period(env, "credits") == (Decimal("3"), 2)


def test_last_ties_on_ts_go_to_the_later_ingested_event(env, instance):
    same_ts = "2025-03-05T00:00:00Z"
    env.drop_jsonl("a.jsonl", [event(metric="seats", quantity="7", ts=same_ts, idempotencyKey="a")])
    catch_up(defs, instance, settle=False)
    env.drop_jsonl("b.jsonl", [event(metric="seats", quantity="2", ts=same_ts, idempotencyKey="b")])
    catch_up(defs, instance, settle=False)
    assert _period(env, "seats") == (Decimal("2"), 2)


def test_late_event_within_the_window_is_folded_in_by_the_sensors(env, instance):
    env.drop_jsonl("e1.jsonl", [event(quantity="5", ts="2025-03-10T10:00:00Z")])
    catch_up(defs, instance, settle=False)
    assert _period(env) == (Decimal("5"), 1)
    env.drop_jsonl("e2.jsonl", [event(quantity="3", ts="2025-03-09T12:00:00Z")])  # 22 h before the watermark
    report = catch_up(defs, instance, settle=False)
    assert not report.failed
    assert _period(env) == (Decimal("8"), 2)
    assert env.sql("SELECT count(*) FROM late_events") == [(0,)]


def test_very_late_event_waits_for_replay_and_replaying_twice_changes_nothing(env, instance):
    env.drop_jsonl("e1.jsonl", [event(quantity="5", ts="2025-03-10T10:00:00Z")])
    catch_up(defs, instance, settle=False)
    env.drop_jsonl("e2.jsonl", [event(quantity="3", ts="2025-03-01T10:00:00Z", idempotencyKey="old")])
    catch_up(defs, instance, settle=False)
    assert _period(env) == (Decimal("5"), 1)
    assert env.sql("SELECT idempotency_key, status, lateness FROM late_events")[0][:2] == ("old", "pending")

    replay = defs.resolve_job_def("replay_job")
    config = {"ops": {"replay_counters": {"config": {"start": "2025-03-01", "end": "2025-03-02"}}}}
    dry = replay.execute_in_process(run_config={"ops": {"replay_counters": {"config": {
        "start": "2025-03-01", "end": "2025-03-02", "dry_run": True}}}}, instance=instance)
    [diff] = dry.output_for_node("replay_counters").diffs
    assert (diff.old, diff.new, diff.delta) == (Decimal("5"), Decimal("8"), Decimal("3"))
    assert _period(env) == (Decimal("5"), 1)  # dry run wrote nothing

    first = replay.execute_in_process(run_config=config, instance=instance).output_for_node("replay_counters")
    assert first.late_applied == 1 and len(first.diffs) == 1
    assert _period(env) == (Decimal("8"), 2)
    assert env.sql("SELECT status FROM late_events") == [("applied",)]
    second = replay.execute_in_process(run_config=config, instance=instance).output_for_node("replay_counters")
    assert second.diffs == [] and second.late_applied == 0
    assert _period(env) == (Decimal("8"), 2)


def test_backfill_over_a_day_range_is_one_run(env, instance):
    env.drop_jsonl("a.jsonl", [event(ts=f"2025-03-{d:02d}T10:00:00Z", quantity=str(d)) for d in range(1, 11)])
    env.ingest()
    result = defs.resolve_job_def("daily_usage_job").execute_in_process(instance=instance, tags={
        "dagster/asset_partition_range_start": "2025-03-01", "dagster/asset_partition_range_end": "2025-03-10"})
    assert result.success
    assert len(instance.get_runs(filters=dg.RunsFilter(job_name="daily_usage_job"))) == 1
    materialized = instance.get_materialized_partitions(dg.AssetKey("daily_usage"))
    assert {f"2025-03-{d:02d}" for d in range(1, 11)} <= materialized
    assert env.sql("SELECT count(*), sum(sum_quantity) FROM daily_usage") == [(10, Decimal("55"))]


def test_ui_backfill_applies_pending_late_events_of_its_days(env, instance):
    env.drop_jsonl("e1.jsonl", [event(quantity="5", ts="2025-03-10T10:00:00Z")])
    catch_up(defs, instance, settle=False)
    env.drop_jsonl("e2.jsonl", [event(quantity="3", ts="2025-03-01T10:00:00Z", idempotencyKey="old")])
    catch_up(defs, instance, settle=False)
    defs.resolve_job_def("daily_usage_job").execute_in_process(instance=instance, partition_key="2025-03-01")
    assert env.sql("SELECT status FROM late_events") == [("applied",)]
    catch_up(defs, instance, settle=False)  # the sensor refreshes the period from the new day
    assert _period(env) == (Decimal("8"), 2)


def test_change_to_a_closed_period_is_recorded_as_a_carry_forward(env, instance):
    env.set_now("2025-02-20T00:00:00Z")
    env.drop_jsonl("a.jsonl", [event(quantity="5", ts="2025-02-10T10:00:00Z")])
    catch_up(defs, instance, settle=False)
    env.set_now("2025-03-20T00:00:00Z")  # February closed at Mar 1 + 48 h
    env.drop_jsonl("b.jsonl", [event(quantity="3", ts="2025-02-11T10:00:00Z", idempotencyKey="feb-late")])
    catch_up(defs, instance, settle=False)  # late beyond the window: pending
    defs.resolve_job_def("replay_job").execute_in_process(instance=instance, run_config={
        "ops": {"replay_counters": {"config": {"start": "2025-02-01", "end": "2025-03-01"}}}})
    assert env.sql("SELECT origin_period::DATE::VARCHAR, old_value, new_value, delta, policy, status "
                   "FROM period_adjustments") == [("2025-02-01", Decimal(5), Decimal(8), Decimal(3),
                                                   "carry_forward", "open")]


QUANTITIES = st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False, allow_infinity=False)
EVENTS = st.lists(st.tuples(st.sampled_from(["api_calls", "storage_gb", "seats", "credits"]),
                            st.sampled_from(["cus_A", "cus_B"]), QUANTITIES,
                            st.integers(min_value=0, max_value=20 * 24 - 1)), min_size=1, max_size=25)


@hsettings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(EVENTS, min_size=1, max_size=4))
def test_recomputing_from_scratch_equals_the_incremental_path(tmp_path_factory, batches):
    """Incremental: per batch, recompute only the days it touched (what the
    watermark sensor requests) and their period; late events beyond the
    window are then replayed. Scratch: every partition recomputed."""
    with pytest.MonkeyPatch.context() as mp:
        env = Env(tmp_path_factory.mktemp("prop"), mp)
        config, now = load_config(), utc(NOW)
        n = 0
        for b, batch in enumerate(batches):
            rows = []
            for metric, customer, q, hour in batch:
                n += 1
                ts = f"2025-03-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z"
                q = q if metric == "credits" else abs(q)
                rows.append(event(metric=metric, customer=customer, quantity=str(q), ts=ts, idempotencyKey=f"e{n}"))
            env.drop_jsonl(f"b{b}.jsonl", rows)
            result = env.ingest(f"batch{b}")
            with connect(str(env.warehouse)) as conn, transaction(conn):
                for day in (d["day"] for d in result.days):
                    start = datetime.fromisoformat(day)
                    recompute_days(conn, start, start + timedelta(days=1), now)
                recompute_periods(conn, config, datetime(2025, 3, 1), datetime(2025, 4, 1), now, "inc")
        with connect(str(env.warehouse)) as conn:
            replay(conn, config, datetime(2025, 3, 1), datetime(2025, 4, 1), now=now, run_id="replay")
        incremental = env.sql("SELECT * EXCLUDE (computed_at) FROM period_usage ORDER BY ALL")
        with connect(str(env.warehouse)) as conn, transaction(conn):
            conn.execute("DELETE FROM daily_usage; DELETE FROM period_usage")
            recompute_days(conn, datetime(2025, 3, 1), datetime(2025, 4, 1), now)
            recompute_periods(conn, config, datetime(2025, 3, 1), datetime(2025, 4, 1), now, "scratch")
        assert env.sql("SELECT * EXCLUDE (computed_at) FROM period_usage ORDER BY ALL") == incremental
        expected = env.sql("SELECT metric, customer_ref, sum(quantity) FROM events "
                           "WHERE metric IN ('api_calls', 'credits') GROUP BY ALL ORDER BY ALL")
        assert env.sql("SELECT metric, customer_ref, value FROM period_usage "
                       "WHERE metric IN ('api_calls', 'credits') ORDER BY ALL") == expected


def test_a_large_quantity_whose_sum_fits_is_counted_not_reported_as_overflow(env, instance):
    # 29 integer digits fit DECIMAL(38,9); only a sum that cannot be represented is an overflow.
    env.drop_jsonl("a.jsonl", [event(quantity="12000000000000000000000000000.5", idempotencyKey="big"),
                               event(quantity="3000000000000000000000000000.25", idempotencyKey="big2"),
                               event(metric="credits", quantity="99999999999999999999999999999.5",
                                     idempotencyKey="edge")])
    assert not catch_up(defs, instance, settle=False).failed
    assert env.sql("SELECT metric, sum_quantity FROM daily_usage ORDER BY metric") == [
        ("api_calls", Decimal("15000000000000000000000000000.75")),
        ("credits", Decimal("99999999999999999999999999999.5"))]
    assert _period(env) == (Decimal("15000000000000000000000000000.75"), 2)
    # Extrapolated to the whole period the credits would exceed the type: no projection, and why.
    assert env.sql("SELECT projected_usage, note FROM cost_projection WHERE metric = 'credits'") == [
        (None, "the projected usage exceeds DECIMAL(38,9); no price configured for this metric")]


def test_a_counter_too_large_to_represent_fails_the_run_but_not_the_other_counters(env, instance):
    huge = "99999999999999999999999999999"
    env.drop_jsonl("a.jsonl", [event(tenant="mallory", quantity=huge, idempotencyKey=f"m{i}") for i in range(3)]
                   + [event(tenant="alice", quantity="5")])
    env.ingest()
    result = defs.resolve_job_def("daily_usage_job").execute_in_process(
        instance=instance, partition_key="2025-03-10", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "mallory/api_calls/cus_A/2025-03-10" in failure.step_failure_data.error.message
    assert env.sql("SELECT tenant_id, sum_quantity FROM daily_usage") == [("alice", Decimal(5))]
