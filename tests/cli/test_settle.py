"""Which day spans a catch-up settles (push, reconciliation) once counting is done."""

from stripemeter_assets.cli.runner import CatchUpReport, RunOutcome, _periods_to_settle


def refreshed(*spans: str, failed: str = "") -> CatchUpReport:
    runs = [RunOutcome("period_usage_job", f"r{i}", True, span) for i, span in enumerate(spans)]
    runs += [RunOutcome("daily_usage_job", "d", True, "2025-01-03..2025-01-09")]
    if failed:
        runs.append(RunOutcome("period_usage_job", "f", False, failed))
    return CatchUpReport(runs=runs)


def test_today_is_settled_once_when_a_refreshed_span_holds_it():
    # Events of today refreshed a span ending today: a second run for today alone would
    # push and reconcile the same open periods again.
    assert _periods_to_settle(refreshed("2025-01-03..2025-01-09"), "2025-01-09") == ["2025-01-03..2025-01-09"]
    assert _periods_to_settle(refreshed("2025-01-09"), "2025-01-09") == ["2025-01-09"]


def test_today_is_settled_too_when_no_refreshed_span_holds_it():
    assert _periods_to_settle(refreshed("2025-01-03..2025-01-08", "2024-12-30"), "2025-01-09") == \
        ["2024-12-30", "2025-01-03..2025-01-08", "2025-01-09"]
    # Only counters that were refreshed count: a failed run's span settles nothing.
    assert _periods_to_settle(refreshed(failed="2025-01-09"), "2025-01-09") == ["2025-01-09"]
