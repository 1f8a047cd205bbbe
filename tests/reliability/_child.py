"""Child process for the kill -9 tests (not a test module).

    python _child.py ingest            one ingest batch of every ready landing file
    python _child.py daily START END   daily_usage_job over [START, END] through Dagster
    python _child.py catch-up          `stripemeter catch-up` (cli.commands) with the ingest phases

It prints `PHASE <name>` (flushed) as it goes, so the parent can SIGKILL it at
a chosen point. With SM_HOLD_AFTER=<phase> it sleeps right after printing
that phase (inside the open DuckDB transaction), so a kill there is certain
to land before the commit."""

import os
import sys
import time


def phase(name: str) -> None:
    print(f"PHASE {name}", flush=True)
    if os.environ.get("SM_HOLD_AFTER") == name:
        time.sleep(3600)


def phased_scripts(real_run_script):
    """The batch module's run_script, reporting a phase before and after each SQL file."""
    def run_script(conn, name, **params):
        phase(f"before:{name}")
        real_run_script(conn, name, **params)
        phase(f"after:{name}")
    return run_script


def ingest() -> None:
    from stripemeter_assets import settings
    from stripemeter_assets.ledger import batch, list_ready_files
    from stripemeter_assets.warehouse import connect

    real_run_script, real_stage = batch.run_script, batch._stage_file

    def stage(conn, file, *args):
        phase(f"stage:{os.path.basename(file.path)}")
        return real_stage(conn, file, *args)

    batch.run_script, batch._stage_file = phased_scripts(real_run_script), stage
    files = list_ready_files(settings.landing_url(), settle=0)
    phase("connect")
    with connect(settings.warehouse_path()) as conn:
        result = batch.ingest_batch(conn, files, batch_id=os.environ.get("SM_BATCH_ID", "child"),
                                    config=settings.load_config(), now=settings.now())
        phase("returned")
    phase(f"done loaded={result.total('rows_loaded')}")


def catch_up() -> None:
    """`stripemeter catch-up`, exactly, with the ingest phases reported."""
    from stripemeter_assets.ledger import assets as ingest_asset
    from stripemeter_assets.cli.commands import main
    from stripemeter_assets.ledger import batch

    real_run_script, real_ingest_batch = batch.run_script, ingest_asset.ingest_batch

    def ingest_batch(*args, **kwargs):
        result = real_ingest_batch(*args, **kwargs)
        phase("committed")  # in DuckDB; Dagster has not recorded the materialization yet
        return result

    batch.run_script, ingest_asset.ingest_batch = phased_scripts(real_run_script), ingest_batch
    sys.exit(main(["catch-up"]))


def daily(start: str, end: str) -> None:
    import dagster as dg

    from stripemeter_assets.counters import assets as counter_assets
    from stripemeter_assets.definitions import defs

    real = counter_assets.recompute_days

    def recompute_days(conn, *args, **kwargs):
        phase("recompute:start")
        rows = real(conn, *args, **kwargs)
        phase("recompute:done")  # DELETE and INSERT ran; the transaction is still open
        return rows

    counter_assets.recompute_days = recompute_days
    with dg.DagsterInstance.get() as instance:
        # What `stripemeter catch-up` does first: free the pool slots of runs
        # whose process was killed, or this run waits for them forever.
        from stripemeter_assets.cli.runner import release_dead_runs

        release_dead_runs(instance)
        phase("job:start")
        result = defs.resolve_job_def("daily_usage_job").execute_in_process(
            instance=instance, raise_on_error=False,
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end})
    phase(f"done success={result.success}")


if __name__ == "__main__":
    {"ingest": ingest, "daily": daily, "catch-up": catch_up}[sys.argv[1]](*sys.argv[2:])
