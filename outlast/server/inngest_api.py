"""Inngest's REST API (`/v1/...`, as in `pkg/api/apiv1` of inngest/inngest) and its GraphQL
subset (`/v0/gql`, see `inngest_gql`), for the official SDKs, their test harnesses and tools.

- `GET /v1/events` (`name`, `cursor`, `limit` 1..51 default 20, `received_after` default an hour
  ago, `received_before` default now), `GET /v1/events/{id}`, `GET /v1/events/{id}/runs`
- `GET /v1/runs/{id}`, `DELETE /v1/runs/{id}` (cancel), `GET /v1/runs/{id}/jobs`
- `POST /v1/cancellations` (bulk cancel, see `inngest_cancel`)

Answers are `{"data": ..., "metadata": {"fetched_at": ...}}`; errors `{"error", "data": null,
"status"}` with the status code. Production mode requires the bearer form of a signing key
(`bearer.py`); bad input is a 400 that names the parameter, and nothing else reaches a client
of a failure but a short message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.core.models import EventFilter, Run
from outlast.errors import StoreError
from outlast.server import inngest_gql
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.inngest_cancel import CancellationError, cancel_runs, parse_request
from outlast.server.inngest_shapes import (
    REST_STATUS,
    cron_of,
    event_json,
    iso,
    job_json,
    parse_time,
    parse_ulid,
    run_json,
)
from outlast.server.services import services

log = logging.getLogger("outlast.server")
DEFAULT_EVENTS = 20
MAX_EVENTS = 51
EVENTS_WINDOW_MS = 3_600_000
MAX_EVENT_RUNS = 1000
MAX_JOBS = 100
#: the limit of a `POST /v1/cancellations` body (a filter, never large)
MAX_CANCELLATION_BYTES = 64 * 1024
Handler = Callable[[Request], Awaitable[JSONResponse]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def endpoint(handler: Handler) -> Handler:
    """A `/v1` handler behind the signing-key guard, its errors answered in Inngest's shape."""

    async def guarded(request: Request) -> JSONResponse:
        refusal = services(request).bearer.refusal(request, what="Inngest's REST API (/v1)")
        if refusal:
            return error(401, refusal)
        try:
            return await handler(request)
        except ApiError as exc:
            return error(exc.status, exc.message)
        except StoreError as exc:
            return error(503, f"store unavailable, retry: {exc}")
        except Exception:
            log.exception("%s %s failed", request.method, request.url.path)
            return error(500, "internal error")

    return guarded


def _ok(request: Request, data: Any) -> JSONResponse:
    now = services(request).engine.clock.now_ms()
    return JSONResponse({"data": data, "metadata": {"fetched_at": iso(now)}})


async def list_events(request: Request) -> JSONResponse:
    params = request.query_params
    limit = max(1, min(_int(params.get("limit"), "limit") or DEFAULT_EVENTS, MAX_EVENTS))
    cursor = params.get("cursor")
    before = _ulid(cursor, "Invalid cursor query parameter") if cursor else None
    engine = services(request).engine
    now = engine.clock.now_ms()
    newest = _time(params.get("received_before"), "received_before")
    oldest = _time(params.get("received_after"), "received_after")
    events = await engine.reads.list_events(
        EventFilter(
            name=params.get("name") or None,
            since=oldest if oldest is not None else now - EVENTS_WINDOW_MS,
            until=(newest if newest is not None else now) + 1,
            before=before,
            system=False,
            limit=limit,
        )
    )
    return _ok(request, [event_json(e) for e in events])


async def get_event(request: Request) -> JSONResponse:
    event_id = _ulid(request.path_params["event_id"], "Invalid event ID")
    found = await services(request).engine.reads.get_events([event_id])
    if not found:
        raise ApiError(404, f"Event not found: {event_id}")
    return _ok(request, event_json(found[0]))


async def event_runs(request: Request) -> JSONResponse:
    event_id = _ulid(request.path_params["event_id"], "Invalid event ID")
    reads = services(request).engine.reads
    runs = (await reads.runs_for_events([event_id], MAX_EVENT_RUNS))[event_id]
    events = await reads.get_events([event_id]) if runs else []
    cron = cron_of(events[0]) if events else None
    return _ok(request, [run_json(r, cron=cron) for r in runs])


async def get_run(request: Request) -> JSONResponse:
    run = await _run(request)
    return _ok(request, run_json(run, cron=await _cron(request, run)))


async def cancel_run(request: Request) -> JSONResponse:
    """Cancel a run; a run that already ended is left as it is (200, `cancelled: false`)."""
    run = await _run(request)
    engine = services(request).engine
    cancelled = await engine.cancel_run(run.id)
    after = await engine.reads.get_run(run.id) or run
    status = REST_STATUS.get(after.status, "Unknown")
    return _ok(request, {"run_id": run.id, "cancelled": cancelled, "status": status})


async def run_jobs(request: Request) -> JSONResponse:
    run = await _run(request)
    jobs = await services(request).engine.reads.run_jobs(run.id, MAX_JOBS)
    return _ok(request, [job_json(job, run) for job in jobs])


async def bulk_cancel(request: Request) -> JSONResponse:
    try:
        payload = jsonutil.loads(await read_body(request, MAX_CANCELLATION_BYTES))
    except BodyTooLargeError as exc:
        raise ApiError(413, str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, f"Invalid cancellation request: the body is not valid JSON ({exc})") from None
    engine = services(request).engine
    await engine.refresh_registry()
    now = engine.clock.now_ms()
    try:
        cancellation = parse_request(payload, engine, now)
    except CancellationError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return _ok(request, await cancel_runs(engine, cancellation, now))


async def _run(request: Request) -> Run:
    run_id = _ulid(request.path_params["run_id"], "Invalid run ID")
    run = await services(request).engine.reads.get_run(run_id)
    if run is None:
        raise ApiError(404, f"Unable to load function run: {run_id} not found")
    return run


async def _cron(request: Request, run: Run) -> str | None:
    events = await services(request).engine.reads.get_events(run.event_ids[:1])
    return cron_of(events[0]) if events else None


ROUTES: list[BaseRoute] = [
    Route("/v1/events", endpoint(list_events), methods=["GET"]),
    Route("/v1/events/{event_id}", endpoint(get_event), methods=["GET"]),
    Route("/v1/events/{event_id}/runs", endpoint(event_runs), methods=["GET"]),
    Route("/v1/runs/{run_id}", endpoint(get_run), methods=["GET"]),
    Route("/v1/runs/{run_id}", endpoint(cancel_run), methods=["DELETE"]),
    Route("/v1/runs/{run_id}/jobs", endpoint(run_jobs), methods=["GET"]),
    Route("/v1/cancellations", endpoint(bulk_cancel), methods=["POST"]),
    *inngest_gql.ROUTES,
]


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "data": None, "status": status}, status_code=status)


def _ulid(text: str, message: str) -> str:
    parsed = parse_ulid(text)
    if parsed is None:
        raise ApiError(400, f"{message}: {text!r} is not a ULID")
    return parsed


def _int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, f"Invalid {name} query parameter: {text!r} is not an integer") from None


def _time(text: str | None, name: str) -> int | None:
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ApiError(400, f"Invalid {name} query parameter: {exc}") from None
