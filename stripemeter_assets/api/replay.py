"""`POST /v1/replay` and `GET /v1/replay/{runId}`.

A replay is a `replay_job` run submitted to the Dagster instance through
`dagster job launch`, the instance's own run coordinator and launcher: the
same queue (a `QueuedRunCoordinator` in production) and the same `duckdb`
pool as runs started from the UI. The API process never opens the warehouse.
The status answer carries the per-counter diff the run reported, the same
table `stripemeter replay` prints.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from fastapi import APIRouter, Body, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from stripemeter_assets import settings
from stripemeter_assets.api.auth import AuthError, Principal
from stripemeter_assets.api.routes import principal
from stripemeter_assets.settings import utc

router = APIRouter(tags=["replay"])
JOB = "replay_job"
OP = "replay_counters"
TENANT_TAG = "stripemeter/tenant"
LAUNCH_TIMEOUT_SECONDS = 300
_DIFF_COLUMNS = ("tenantId", "metric", "customerRef", "period", "old", "new", "delta")


@functools.cache
def dagster_instance() -> dg.DagsterInstance:
    # Imported here: the runner loads the definitions, which `stripemeter serve`'s start-up never needs.
    from stripemeter_assets.cli.runner import local_instance

    return local_instance()


class ReplayRequest(BaseModel):
    tenantId: str
    start: str = Field(description="ISO date or time, inclusive (UTC)")
    end: str = Field(description="ISO date or time, exclusive (UTC)")
    dryRun: bool = False


def _target() -> list[str]:
    # The UI's code location (workspace.yaml names it `stripemeter`), so a
    # queued run is launched by the daemon from the location it knows.
    workspace = Path.cwd() / "workspace.yaml"
    if workspace.exists():
        return ["-w", str(workspace)]
    return ["-m", "stripemeter_assets.definitions"]


def submit(request: ReplayRequest) -> str:
    run_id = str(uuid.uuid4())
    config = {"ops": {OP: {"config": {"start": request.start, "end": request.end, "tenant": request.tenantId,
                                       "dry_run": request.dryRun}}}}
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster) if dagster.exists() else sys.executable, *([] if dagster.exists() else ["-m", "dagster"]),
               "job", "launch", *_target(), "-j", JOB, "--config-json", json.dumps(config),
               "--tags", json.dumps({TENANT_TAG: request.tenantId, "stripemeter/source": "api"}),
               "--run-id", run_id]
    done = subprocess.run(command, env=settings.child_env(DAGSTER_HOME=str(settings.dagster_home())),
                          capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_SECONDS)
    if done.returncode != 0:
        raise RuntimeError(f"dagster job launch failed: {done.stderr.strip()[-2000:]}")
    return run_id


@router.post("/v1/replay", status_code=202)
async def start_replay(request: Annotated[ReplayRequest, Body()],
                       caller: Annotated[Principal, Depends(principal)]):
    """Submits `replay_job` for the tenant and range; returns its run id."""
    caller.require([request.tenantId])
    try:
        if utc(request.start) >= utc(request.end):
            return JSONResponse({"error": "start must be before end"}, status_code=400)
    except ValueError as exc:
        return JSONResponse({"error": f"start/end: {exc}"}, status_code=400)
    try:
        run_id = await run_in_threadpool(submit, request)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    return {"runId": run_id, "status": "SUBMITTED", "tenantId": request.tenantId, "dryRun": request.dryRun}


@router.get("/v1/replay/{run_id}")
async def replay_status(run_id: str, caller: Annotated[Principal, Depends(principal)]):
    """The run's status and, once it succeeded, its per-counter diff."""
    answer = await run_in_threadpool(_status, run_id, caller)
    if answer is None:
        return JSONResponse({"error": f"no replay run {run_id}"}, status_code=404)
    return answer


def _status(run_id: str, caller: Principal) -> dict[str, Any] | None:
    instance = dagster_instance()
    run = instance.get_run_by_id(run_id)
    if run is None or run.job_name != JOB or TENANT_TAG not in run.tags:
        return None
    tenant = run.tags[TENANT_TAG]
    if tenant not in caller.tenants:
        raise AuthError(403, f"this key may not use tenant {tenant!r}")
    config = run.run_config["ops"][OP]["config"]
    answer: dict[str, Any] = {"runId": run_id, "status": run.status.value, "tenantId": tenant,
                              "start": config["start"], "end": config["end"], "dryRun": config["dry_run"]}
    metadata = _output_metadata(instance, run_id)
    if metadata:
        table = metadata["diff"].value
        answer.update(countersChanged=metadata["counters_changed"].value,
                      lateEventsApplied=metadata["late_events_applied"].value,
                      diffTable=table, diff=_rows(table))
    return answer


def _output_metadata(instance: dg.DagsterInstance, run_id: str) -> dict[str, Any]:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT):
        return dict(entry.dagster_event.step_output_data.metadata)
    return {}


def _rows(table: str) -> list[dict[str, str]]:
    """The diff table's rows (`replay_job.diff_table`, one line per counter)."""
    rows = []
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows.append(dict(zip(_DIFF_COLUMNS, cells)))
    return rows
