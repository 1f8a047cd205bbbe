"""Headless runs through the same definitions and instance the daemon uses:
sensors evaluated once per round, their run requests executed in process,
until nothing is pending (`stripemeter catch-up`)."""

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import dagster as dg
import duckdb

from stripemeter_assets import settings
from stripemeter_assets.jobs import SETTLE_ASSETS
from stripemeter_assets.periods.lookup import share_a_period, stabbing_days
from stripemeter_assets.sensors import RANGE_END, RANGE_START, partition_request

SENSOR_ORDER = ("landing_sensor", "watermark_sensor")
CURSOR_PREFIX = "stripemeter/headless/"
# Headless runs print their outcome lines; step-by-step logs stay in the instance.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Whether a period overlaps both [.., end) and [start, ..) (periods.lookup.share_a_period).
Share = Callable[[datetime, datetime], bool]
# pre_invoice_job without its recount, for spans period_usage_job has just counted.
SETTLE_COUNTED = [dg.AssetKey(name) for name in SETTLE_ASSETS]


def local_instance() -> dg.DagsterInstance:
    """The Dagster instance under `DAGSTER_HOME`; a new home gets the bundled
    `dagster.yaml` (the `duckdb` pool with its one slot)."""
    home = settings.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    settings.use_environment({"DAGSTER_HOME": str(home)})  # Dagster's own commands read it
    if not (home / "dagster.yaml").exists():
        (home / "dagster.yaml").write_text(settings.bundled("dagster.yaml"))
    return dg.DagsterInstance.from_config(str(home))

@dataclass
class RunOutcome:
    job: str
    run_id: str
    success: bool
    partitions: str = ""


@dataclass
class CatchUpReport:
    runs: list[RunOutcome] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # dead runs whose pool slots were freed

    @property
    def failed(self) -> list[RunOutcome]:
        return [r for r in self.runs if not r.success]


def _already_succeeded(instance: dg.DagsterInstance, run_key: str | None) -> bool:
    if not run_key:
        return False
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key},
                                                   statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1)
    return bool(runs)


def execute_request(defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest,
                    default_job: str | None = None, assets: list[dg.AssetKey] | None = None) -> RunOutcome:
    job_name = request.job_name or default_job
    job = defs.resolve_job_def(job_name)
    tags = dict(request.tags or {})
    if request.run_key:
        tags["dagster/run_key"] = request.run_key
    run_config = {**QUIET_LOGS, **(request.run_config or {})}
    result = job.execute_in_process(
        run_config=run_config,
        instance=instance,
        tags=tags,
        partition_key=request.partition_key,
        asset_selection=assets,
        raise_on_error=False,
    )
    span = request.partition_key or "..".join(
        filter(None, [tags.get(RANGE_START), tags.get(RANGE_END)]))
    return RunOutcome(job=job_name, run_id=result.run_id, success=result.success, partitions=span)


def tick_sensor(defs: dg.Definitions, instance: dg.DagsterInstance,
                name: str) -> tuple[list[dg.RunRequest], str | None]:
    """One tick of a sensor from its headless cursor, kept in the instance.
    Returns the run requests and the new cursor, which `catch_up` stores
    (`save_cursor`) only once those runs succeeded: a crash mid-run then
    requests the same work again instead of forgetting it."""
    sensor = defs.resolve_sensor_def(name)
    cursor = instance.run_storage.get_cursor_values({CURSOR_PREFIX + name}).get(CURSOR_PREFIX + name)
    context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, sensor_name=name,
                                      resources=defs.resources)
    result = sensor.evaluate_tick(context)
    default_job = sensor.job_name if len(sensor.targets) == 1 else None
    requests = [r.with_replaced_attrs(job_name=r.job_name or default_job) for r in result.run_requests or []]
    return requests, result.cursor


def save_cursor(instance: dg.DagsterInstance, name: str, cursor: str | None) -> None:
    if cursor is not None:
        instance.run_storage.set_cursor_values({CURSOR_PREFIX + name: cursor})


def _run_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_START):
        if entry.dagster_event and entry.dagster_event.pid:
            return entry.dagster_event.pid
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Marks failed the in-process runs of this host whose process is gone
    (killed with SIGKILL, power loss) and frees their `duckdb` pool slots:
    otherwise the slot stays claimed and every later warehouse run waits
    for it forever. Runs of live processes (a daemon's, another catch-up's)
    are left alone."""
    released = []
    active = instance.get_runs(filters=dg.RunsFilter(statuses=[
        dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]))
    for run in active:
        pid = _run_pid(instance, run.run_id)
        if pid is None or _alive(pid):
            continue
        instance.report_run_failed(run, f"process {pid} is gone (killed?); its pool slots were released")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def catch_up(defs: dg.Definitions, instance: dg.DagsterInstance, max_rounds: int = 20,
             settle: bool = True) -> CatchUpReport:
    """Runs what the sensors request until a round requests nothing; then,
    with `settle`, the pre-invoice job (push, reconcile) for every period
    refreshed and for the open period, and publishes the analyst snapshot."""
    report = CatchUpReport(released=release_dead_runs(instance))
    now_period = settings.now().strftime("%Y-%m-%d")  # today's partition: every open period overlaps it
    for round_no in range(max_rounds):
        requested = 0
        for name in SENSOR_ORDER:
            if name == "watermark_sensor" and (round_no == 0 or requested):
                # Counters are cut on the customers' billing periods: read them from Stripe
                # first, for the tenants and customers the ledger now holds.
                outcome = execute_request(defs, instance, dg.RunRequest(job_name="billing_periods_job"))
                report.runs.append(outcome)
                if not outcome.success:
                    return report
            requests, cursor = tick_sensor(defs, instance, name)
            outcomes = []
            for request in requests:
                requested += 1
                if _already_succeeded(instance, request.run_key):
                    continue
                outcomes.append(execute_request(defs, instance, request))
            report.runs.extend(outcomes)
            if not all(o.success for o in outcomes):
                # The cursor stays put, so the next catch-up asks again.
                return report
            save_cursor(instance, name, cursor)
        if not requested:
            break
    if settle:
        report.runs.extend(settle_periods(defs, instance, _spans_to_settle(defs, report, now_period)))
    return report


def _spans_to_settle(defs: dg.Definitions, report: CatchUpReport, now_period: str) -> list[tuple[str, bool]]:
    """`_periods_to_settle` and `_fewest_days` over the warehouse's periods; when another
    process holds the warehouse's lock, each span as it is, and its run meets the lock as
    any run would, as a failed run the report shows."""
    try:
        with defs.resources["warehouse"].connect() as conn:
            share = functools.partial(share_a_period, conn)
            return [fewer for span, counted in _periods_to_settle(report, now_period, share)
                    for fewer in _fewest_days(conn, share, span, counted)]
    except duckdb.IOException:
        return _periods_to_settle(report, now_period, lambda end, start: False)


def settle_periods(defs: dg.Definitions, instance: dg.DagsterInstance,
                   spans: list[tuple[str, bool]]) -> list[RunOutcome]:
    """The pre-invoice job (push, reconcile) for each span of day partitions
    (`day` or `first..last`, as a counter run names them), then the analyst
    snapshot. A span flagged counted had its period counters recounted by
    this catch-up's `period_usage_job`, so its run skips the recount."""
    runs = []
    for span, counted in spans:
        first, _, last = span.partition("..")
        request = partition_request("pre_invoice_job", None, first, last or first, {})
        runs.append(execute_request(defs, instance, request, assets=SETTLE_COUNTED if counted else None))
    return runs + [execute_request(defs, instance, dg.RunRequest(job_name="snapshot_job"))]


def _periods_to_settle(report: CatchUpReport, now_period: str,
                       share: Share) -> list[tuple[str, bool]]:
    """(span, counted) for the day spans whose period counters this catch-up
    refreshed, plus today's (not counted) unless one of them holds it. Spans
    that share a period go in one span (`_merge_sharing`): each pre-invoice
    run settles every period its days touch (push, reconciliation, a Stripe
    read per mapped counter), so two runs would settle that period twice."""
    refreshed = {r.partitions for r in report.runs if r.job == "period_usage_job" and r.success and r.partitions}
    spans = [(_day(first), _day(last or first), True) for first, _, last in (s.partition("..") for s in refreshed)]
    today = _day(now_period)
    if not any(first <= today <= last for first, last, _ in spans):
        spans.append((today, today, False))
    return [(_span(first, last), counted) for first, last, counted in _merge_sharing(sorted(spans), share)]


def _fewest_days(conn: duckdb.DuckDBPyConnection, share: Share, span: str, counted: bool) -> list[tuple[str, bool]]:
    """A counted span is settled over its stabbing days only (`periods.lookup.stabbing_days`:
    the same periods, a fraction of the day partitions, each of which costs Dagster event
    records per asset), in one run per group of them that share a period, so that no period
    is settled twice; with no period at all, over its last day (the push still pulls error
    reports and re-sends what is pending). An uncounted span keeps every day: its recount
    also gives the counters of each month it touches their calendar periods."""
    if not counted:
        return [(span, False)]
    first, _, last = span.partition("..")
    days = stabbing_days(conn, _day(first), _day(last or first)) or [_day(last or first)]
    # every day of the span was counted, so each group is too
    return [(_span(a, b), True) for a, b, _ in _merge_sharing([(d, d, True) for d in days], share)]


def _merge_sharing(spans: list[tuple[datetime, datetime, bool]],
                   share: Share) -> list[tuple[datetime, datetime, bool]]:
    """Sorted (first, last, counted) day spans, each run of them that share a
    period (`share(end of one, start of the next)`) as one span, counted only
    when all of them were and they leave no day out between them."""
    merged: list[tuple[datetime, datetime, bool]] = []
    for first, last, counted in spans:
        if merged and share(merged[-1][1] + timedelta(days=1), first):
            m_first, m_last, m_counted = merged[-1]
            contiguous = first <= m_last + timedelta(days=1)
            merged[-1] = (m_first, max(m_last, last), m_counted and counted and contiguous)
        else:
            merged.append((first, last, counted))
    return merged


def _span(first: datetime, last: datetime) -> str:
    return f"{first:%Y-%m-%d}" if first == last else f"{first:%Y-%m-%d}..{last:%Y-%m-%d}"


def _day(partition: str) -> datetime:
    return datetime.strptime(partition, "%Y-%m-%d")
