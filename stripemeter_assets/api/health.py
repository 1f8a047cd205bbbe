"""`/health/live` and `/health/ready` (no auth: probes carry no key).

Ready means the API can do its job: accept events (the landing takes a
file), answer reads from a fresh snapshot (younger than
`api.max_snapshot_age_minutes`) and submit replays (the Dagster instance
answers). Otherwise 503 with every failing reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stripemeter_assets import settings
from stripemeter_assets.api.snapshot import SnapshotMissing, iso, open_snapshot
from stripemeter_assets.api.state import ApiState

router = APIRouter(tags=["operations"])


@router.get("/health/live")
async def live():
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(request: Request):
    state: ApiState = request.app.state.api
    checks = await run_in_threadpool(_checks, state)
    failing = {name: reason for name, reason in checks.items() if reason != "ok"}
    body = {"status": "ok" if not failing else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=503 if failing else 200)


def _checks(state: ApiState) -> dict[str, str]:
    return {"landing": _landing(state), "snapshot": _snapshot(state), "instance": _instance()}


def _landing(state: ApiState) -> str:
    try:
        state.writer.probe()
        return "ok"
    except Exception as exc:
        return f"landing not writable: {type(exc).__name__}: {exc}"


def _snapshot(state: ApiState) -> str:
    limit = state.config.api.max_snapshot_age_minutes
    try:
        with open_snapshot(state.analytics_path) as snap:
            age = (settings.now() - snap.as_of).total_seconds() / 60
            as_of = snap.as_of
    except SnapshotMissing as exc:
        return str(exc)
    except Exception as exc:
        return f"snapshot unreadable: {type(exc).__name__}"
    if age > limit:
        return f"snapshot as of {iso(as_of)} is {age:.0f} min old (limit {limit:g} min)"
    return "ok"


def _instance() -> str:
    from stripemeter_assets.api.replay import dagster_instance

    try:
        dagster_instance().get_runs(limit=1)
        return "ok"
    except Exception as exc:
        return f"Dagster instance not reachable: {type(exc).__name__}"
