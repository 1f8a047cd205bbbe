"""The `/v1` data routes: ingest, events, usage, projection; and `/metrics`."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from stripemeter_assets.api import snapshot
from stripemeter_assets.api.auth import Principal
from stripemeter_assets.api.idempotency import body_hash, scope_of
from stripemeter_assets.api.ingest import MAX_BODY_BYTES, check_events, claimed_tenants, parse_body, publish
from stripemeter_assets.api.state import ApiState

router = APIRouter()
MAX_IDEMPOTENCY_KEY = 255


def api_state(request: Request) -> ApiState:
    return request.app.state.api


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The caller's key (401 without one), charged one request (429 past its rate)."""
    state = api_state(request)
    who = state.auth.principal(authorization)
    state.limiter.take(who.digest)
    return who


Caller = Annotated[Principal, Depends(principal)]
State = Annotated[ApiState, Depends(api_state)]


async def _read_body(request: Request) -> bytes | None:
    """The body, or None past 10 MB (checked before reading when the length is declared)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class IngestAnswer(BaseModel):
    accepted: int
    rejected: list[dict[str, Any]] = Field(description="[{index, reason, field, detail}] per refused event; "
                                                       "`reason` is the ingest's quarantine reason")


@router.post("/v1/events/ingest", response_model=IngestAnswer, tags=["events"],
             openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                 "type": "object", "required": ["events"],
                 "properties": {"events": {"type": "array", "items": {"type": "object"}}}}}}}})
async def ingest(request: Request, caller: Caller, state: State,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None):
    """Checks every event like the ingest; writes the accepted ones as one
    landing file, durably, before answering. `Idempotency-Key` replays the
    first answer for 24 h."""
    body = await _read_body(request)
    if body is None:
        return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
    if idempotency_key is None:
        return await _ingest(body, caller, state)
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        return JSONResponse({"error": f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} characters"},
                            status_code=400)
    scope = scope_of(caller.digest, idempotency_key)
    async with state.idempotency_locks.hold(scope):
        stored = await run_in_threadpool(state.idempotency.get, scope)
        digest = body_hash(body)
        if stored is not None:
            if stored.body_hash != digest:
                return JSONResponse({"error": "Idempotency-Key was already used with a different body"},
                                    status_code=422)
            return Response(stored.answer, status_code=stored.status, media_type="application/json",
                            headers={"Idempotent-Replayed": "true"})
        response = await _ingest(body, caller, state)
        # Stored before it is sent: a retry after a lost answer gets this one.
        await run_in_threadpool(state.idempotency.put, scope, digest, 200, response.body)
        return response


async def _ingest(body: bytes, caller: Principal, state: ApiState) -> Response:
    events = parse_body(body)
    caller.require(claimed_tenants(events))
    checked = check_events(events, state.config)
    await run_in_threadpool(publish, state.writer, checked)
    state.metrics.accepted.inc(len(checked.lines))
    for item in checked.rejected:
        state.metrics.rejected.labels(item["reason"]).inc()
    answer = {"accepted": len(checked.lines), "rejected": checked.rejected}
    return Response(json.dumps(answer, separators=(",", ":")).encode(), media_type="application/json")


def _read(state: ApiState, fn, *args) -> dict[str, Any]:
    with snapshot.open_snapshot(state.analytics_path) as snap:
        return {"asOf": snapshot.iso(snap.as_of), "data": fn(snap, *args)}


@router.get("/v1/events", tags=["events"])
async def list_events(caller: Caller, state: State, tenant_id: Annotated[str, Query(alias="tenantId")],
                      customer_ref: Annotated[str | None, Query(alias="customerRef")] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """The tenant's latest ledger events (as of the analyst snapshot)."""
    caller.require([tenant_id])
    return await run_in_threadpool(_read, state, snapshot.events, tenant_id, customer_ref, limit)


@router.get("/v1/usage/{customer_ref}", tags=["usage"])
async def get_usage(customer_ref: str, caller: Caller, state: State,
                    tenant_id: Annotated[str, Query(alias="tenantId")]):
    """The customer's counters for the billing period open at the snapshot's as-of time."""
    caller.require([tenant_id])
    answer = await run_in_threadpool(_read, state, snapshot.usage, tenant_id, customer_ref)
    return {"tenantId": tenant_id, "customerRef": customer_ref, "asOf": answer["asOf"], "usage": answer["data"]}


class ProjectionRequest(BaseModel):
    tenantId: str
    customerRef: str


@router.post("/v1/usage/projection", tags=["usage"])
async def get_projection(request: Annotated[ProjectionRequest, Body()], caller: Caller, state: State):
    """The customer's cost projection for the open period (an estimate before the period ends)."""
    caller.require([request.tenantId])
    answer = await run_in_threadpool(_read, state, snapshot.projection, request.tenantId, request.customerRef)
    return {"tenantId": request.tenantId, "customerRef": request.customerRef, "asOf": answer["asOf"],
            "projection": answer["data"]}


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(caller: Caller, state: State):
    """Prometheus text: requests, latency, events accepted/rejected, snapshot gauges."""
    data = await run_in_threadpool(generate_latest, state.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
