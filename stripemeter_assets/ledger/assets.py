"""`usage_events`: landing files appended to the immutable ledger."""


import dagster as dg

from stripemeter_assets import settings
from stripemeter_assets.ledger import ingest_batch
from stripemeter_assets.ledger.landing import archive
from stripemeter_assets.resources import LandingResource, WarehouseResource


class IngestConfig(dg.Config):
    """Which landing files this run loads (the landing sensor names them);
    empty means every ready file not loaded yet."""

    files: list[str] = []


def _reannounce_lost_batches(context: dg.AssetExecutionContext, conn) -> set[str]:
    """Days of earlier batches whose announcing run never succeeded (killed
    after the DuckDB commit, before Dagster recorded the materialization):
    this run announces them again, so their counters still get recomputed."""
    days: set[str] = set()
    pending = conn.execute("SELECT batch_id, announced_in, days FROM ingest_batches "
                           "WHERE NOT confirmed AND batch_id <> ?", [context.run_id]).fetchall()
    for batch_id, announced_in, batch_days in pending:
        run = context.instance.get_run_by_id(announced_in)
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            conn.execute("UPDATE ingest_batches SET confirmed = true WHERE batch_id = ?", [batch_id])
            continue
        days.update(batch_days)
        conn.execute("UPDATE ingest_batches SET announced_in = ? WHERE batch_id = ?", [context.run_id, batch_id])
    if days:
        context.log.warning(f"re-announcing {len(days)} days of earlier batches whose runs did not finish")
    return days


def _summary_table(result) -> str:
    lines = ["| file | status | reader | rows | loaded | duplicate | quarantined |", "|---|---|---|---|---|---|---|"]
    for f in result.files:
        lines.append(f"| {f.path} | {f.status} | {f.reader} | {f.rows_total} | {f.rows_loaded} | {f.rows_duplicate} "
                     f"| {f.rows_quarantined} |")
    return "\n".join(lines)


@dg.asset(
    pool="duckdb",
    group_name="ledger",
    kinds={"duckdb"},
    description="The immutable, deduplicated ledger (`events`), with `quarantine`, `landing_files`, "
                "`watermarks` and `late_events`.",
)
def usage_events(context: dg.AssetExecutionContext, config: IngestConfig,
                 warehouse: WarehouseResource, landing: LandingResource) -> dg.MaterializeResult:
    ready = landing.ready_files()
    if config.files:
        wanted = set(config.files)
        files = [f for f in ready if f.path in wanted]
        missing = wanted - {f.path for f in files}
        if missing:
            context.log.warning(f"{len(missing)} requested files are no longer ready: {sorted(missing)[:5]}")
    else:
        files = ready
    now = settings.now()
    with warehouse.connect() as conn:
        result = ingest_batch(conn, files, batch_id=context.run_id, config=warehouse.config(), now=now)
        reannounced = _reannounce_lost_batches(context, conn)
    # Committed: a file whose content the ledger holds leaves the landing (a
    # rejected one stays, to be fixed in place).
    held = {f.path for f in result.files if f.status != "rejected"}
    stuck = archive(landing.resolved_url(), [f for f in files if f.path in held],
                    batch_id=context.run_id, day=now.date().isoformat())
    for problem in stuck:
        context.log.warning(problem)
    if result.count("rejected"):
        context.log.warning(f"{result.count('rejected')} files rejected; see landing_files and quarantine")
    return dg.MaterializeResult(
        metadata={
            "batch_id": result.batch_id,
            "files": len(result.files),
            "files_rejected": result.count("rejected"),
            "files_skipped": result.count("skipped"),
            "rows_loaded": result.total("rows_loaded"),
            "rows_duplicate": result.total("rows_duplicate"),
            "rows_quarantined": result.total("rows_quarantined"),
            "files_typed_reader": sum(1 for f in result.files if f.reader == "typed"),
            "late_within_window": sum(d["late_within_window"] for d in result.days),
            "late_pending": result.late_pending,
            # Read by watermark_sensor from the event log, never from DuckDB.
            "days_touched": dg.MetadataValue.json(sorted({d["day"] for d in result.days} | reannounced)),
            "summary": dg.MetadataValue.md(_summary_table(result)),
        }
    )
