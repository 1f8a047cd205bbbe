"""Which day spans a catch-up settles (push, reconciliation) once counting is done."""

import functools
import subprocess
import sys
from datetime import datetime, timedelta

import dagster as dg

from stripemeter_assets.cli.runner import (CatchUpReport, RunOutcome, _fewest_days, _periods_to_settle,
                                           _spans_to_settle, catch_up)
from stripemeter_assets.definitions import defs
from stripemeter_assets.periods.lookup import share_a_period, stab
from stripemeter_assets.warehouse import connect
from tests.conftest import event


def refreshed(*spans: str, failed: str = "") -> CatchUpReport:
    runs = [RunOutcome("period_usage_job", f"r{i}", True, span) for i, span in enumerate(spans)]
    runs += [RunOutcome("daily_usage_job", "d", True, "2025-01-03..2025-01-09")]
    if failed:
        runs.append(RunOutcome("period_usage_job", "f", False, failed))
    return CatchUpReport(runs=runs)


def separate(end: datetime, start: datetime) -> bool:
    return False


def test_today_is_settled_once_when_a_refreshed_span_holds_it():
    # Events of today refreshed a span ending today: a second run for today alone would
    # push and reconcile the same open periods again.
    assert _periods_to_settle(refreshed("2025-01-03..2025-01-09"), "2025-01-09", separate) == [("2025-01-03..2025-01-09", True)]
    assert _periods_to_settle(refreshed("2025-01-09"), "2025-01-09", separate) == [("2025-01-09", True)]


def test_today_is_settled_too_when_no_refreshed_span_holds_it():
    # Today's span was not counted by this catch-up: its run recounts first.
    assert _periods_to_settle(refreshed("2025-01-03..2025-01-08", "2024-12-30"), "2025-01-09", separate) == \
        [("2024-12-30", True), ("2025-01-03..2025-01-08", True), ("2025-01-09", False)]
    # Only counters that were refreshed count: a failed run's span settles nothing.
    assert _periods_to_settle(refreshed(failed="2025-01-09"), "2025-01-09", separate) == [("2025-01-09", False)]


def test_spans_that_share_a_period_are_settled_in_one_run():
    def january(end: datetime, start: datetime) -> bool:  # calendar months: does one month hold both days?
        return (end - timedelta(days=1)).month == start.month
    # 3 and 20 January share January: one run, recounting the days between that no run counted
    assert _periods_to_settle(refreshed("2025-01-03", "2025-01-20..2025-01-22"), "2025-01-25", january) == \
        [("2025-01-03..2025-01-25", False)]
    # spans that touch, all counted, stay counted; another month stays apart
    assert _periods_to_settle(refreshed("2025-01-03..2025-01-05", "2025-01-06..2025-01-09", "2024-12-30"),
                              "2025-01-09", january) == [("2024-12-30", True), ("2025-01-03..2025-01-09", True)]


def test_catch_up_settles_the_span_it_counted_without_counting_it_again(env, instance):
    env.drop_jsonl("a.jsonl", [event(ts="2025-03-20T10:00:00Z", quantity="5")])
    report = catch_up(defs, instance)
    assert not report.failed
    settled = {r.partitions: _materialized(instance, r.run_id) for r in report.runs if r.job == "pre_invoice_job"}
    # today (the frozen now) was just counted by period_usage_job
    assert settled == {"2025-03-20": {"stripe_push", "reconciliation_report", "invoice_reconciliation"}}
    assert env.sql("SELECT customer_ref, local_total FROM reconciliation WHERE metric = 'api_calls'") == [
        ("cus_A", 5)]


def test_catch_up_settles_a_period_once_when_two_of_its_spans_were_refreshed(env, instance):
    # Events of 10 March refresh a span of their own; today (20 March) is in the same period.
    # Settled span by span, March would be pushed and reconciled twice: with a key, every
    # mapped counter's summary read from Stripe twice.
    env.drop_jsonl("a.jsonl", [event(ts="2025-03-10T10:00:00Z", quantity="5")])
    report = catch_up(defs, instance)
    assert not report.failed
    settled = {r.partitions: _materialized(instance, r.run_id) for r in report.runs if r.job == "pre_invoice_job"}
    # one run over both spans; the days between were not counted by this catch-up, so it recounts
    assert settled == {"2025-03-10..2025-03-20": {"period_usage", "stripe_push", "reconciliation_report",
                                                  "invoice_reconciliation"}}
    assert env.sql("SELECT customer_ref, local_total FROM reconciliation WHERE metric = 'api_calls'") == [
        ("cus_A", 5)]


def test_catch_up_settles_a_counted_span_over_the_fewest_days_that_meet_its_periods(env, instance):
    # 10-14 February were just counted; one day of them meets every period they overlap
    # (February), so settling runs over that day, not over five day partitions.
    env.drop_jsonl("a.jsonl", [event(ts=f"2025-02-{day}T10:00:00Z", quantity="5", customerRef=f"cus_{day}")
                               for day in range(10, 15)])
    report = catch_up(defs, instance)
    assert not report.failed
    assert [r.partitions for r in report.runs if r.job == "period_usage_job"] == ["2025-02-10..2025-02-14"]
    settled = {r.partitions: _materialized(instance, r.run_id) for r in report.runs if r.job == "pre_invoice_job"}
    assert settled == {"2025-02-14": {"stripe_push", "reconciliation_report", "invoice_reconciliation"},
                       "2025-03-20": {"period_usage", "stripe_push", "reconciliation_report", "invoice_reconciliation"}}
    # February was reconciled all the same: every counter of it has its row
    assert env.sql("SELECT count(*) FROM reconciliation WHERE period_start = '2025-02-01'") == [(5,)]


def test_stabbing_days_that_share_a_period_are_settled_in_one_run(env):
    # 10-20 March counted: calendar months, and a customer anchored on the 15th. Its periods
    # need the 14th and the 20th; both meet March, so one run over 14..20 settles March once.
    with connect(str(env.warehouse)) as conn:
        conn.executemany("INSERT INTO billing_periods VALUES ('acme', ?, ?, ?, NULL, 'api_calls', ?, ?, ?, "
                         "'platform', TIMESTAMP '2025-03-20')",
                         [("cus_A", None, None, "2025-03-01", "2025-04-01", "calendar"),
                          ("cus_B", "cus_B", "si_1", "2025-02-15", "2025-03-15", "stripe"),
                          ("cus_B", "cus_B", "si_1", "2025-03-15", "2025-04-15", "stripe")])
        share = functools.partial(share_a_period, conn)
        assert _fewest_days(conn, share, "2025-03-10..2025-03-20", True) == [("2025-03-14..2025-03-20", True)]
        # without the calendar month, nothing joins the two days: two runs, each period once
        conn.execute("DELETE FROM billing_periods WHERE customer_ref = 'cus_A'")
        assert _fewest_days(conn, share, "2025-03-10..2025-03-20", True) == [("2025-03-14", True),
                                                                            ("2025-03-20", True)]
        # a span with no period at all still gets its run (error reports, pending intents)
        assert _fewest_days(conn, share, "2025-06-10..2025-06-20", True) == [("2025-06-20", True)]


def test_spans_are_settled_as_they_are_while_another_process_holds_the_warehouse(env):
    env.sql("SELECT 1")  # the warehouse exists
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); sys.stdin.readline()", str(env.warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        report = refreshed("2025-01-03..2025-01-08")
        assert _spans_to_settle(defs, report, "2025-01-09") == [("2025-01-03..2025-01-08", True), ("2025-01-09", False)]
    finally:
        holder.communicate("\n", timeout=30)


def test_the_fewest_days_meet_every_period():
    d = lambda day: datetime(2025, 1, day)  # noqa: E731
    # calendar months clipped to a span: one day; periods anchored on the 5th and the 20th: two
    assert stab([(d(1), d(24)), (d(1), d(24))]) == [d(24)]
    assert stab([(d(1), d(4)), (d(5), d(24)), (d(1), d(19)), (d(20), d(24))]) == [d(4), d(24)]
    assert stab([(d(3), d(3)), (d(1), d(9)), (d(8), d(9))]) == [d(3), d(9)]


def _materialized(instance, run_id: str) -> set[str]:
    return {e.dagster_event.asset_key.path[-1]
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}
