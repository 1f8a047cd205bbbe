"""The ASGI app: `create_app()` wires routes, auth errors and request metrics."""

from __future__ import annotations

import contextlib
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from stripemeter_assets.api import health, replay, routes, widget
from stripemeter_assets.api.auth import AuthError, RateLimited
from stripemeter_assets.api.ingest import BadRequest
from stripemeter_assets.api.snapshot import SnapshotMissing
from stripemeter_assets.api.state import ApiState


def create_app(state: ApiState | None = None) -> FastAPI:
    state = state or ApiState.from_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        # Opened once before serving, so a readiness probe never waits for it.
        await run_in_threadpool(replay.dagster_instance)
        yield
        state.idempotency.close()

    app = FastAPI(title="stripemeter", version="1", lifespan=lifespan,
                  description="Usage ingest, usage and projection reads, replays, health, metrics and the "
                              "customer widget. `Authorization: Bearer <key>` on every route but health.")
    app.state.api = state
    for module in (routes, replay, health, widget):
        app.include_router(module.router)

    @app.exception_handler(AuthError)
    async def _auth(request: Request, exc: AuthError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.detail}, status_code=exc.status, headers=headers)

    @app.exception_handler(RateLimited)
    async def _limited(request: Request, exc: RateLimited):
        return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(BadRequest)
    async def _bad(request: Request, exc: BadRequest):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(SnapshotMissing)
    async def _no_snapshot(request: Request, exc: SnapshotMissing):
        return JSONResponse({"error": str(exc)}, status_code=503)

    app.add_middleware(_RequestMetrics, state=state)
    return app


class _RequestMetrics:
    """Counts and times every request by its route template (bounded labels)."""

    def __init__(self, app, state: ApiState):
        self.app = app
        self.metrics = state.metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
            self.metrics.requests.labels(method, template, str(status["code"])).inc()
