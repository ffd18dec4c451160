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
from outlast.runtime.engine import Engine
from outlast.server import inngest_gql
from outlast.server.bearer import BearerGuard
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
from outlast.server.mode import ServerConfig

log = logging.getLogger("outlast.server")
DEFAULT_EVENTS = 20
MAX_EVENTS = 51
EVENTS_WINDOW_MS = 3_600_000
MAX_EVENT_RUNS = 1000
MAX_JOBS = 100
MAX_BODY_BYTES = 64 * 1024
Handler = Callable[[Request], Awaitable[JSONResponse]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def routes(engine: Engine, config: ServerConfig) -> list[BaseRoute]:
    guard = BearerGuard(config, what="Inngest's REST API (/v1)")
    api = _Api(engine)

    def endpoint(handler: Handler) -> Handler:
        async def guarded(request: Request) -> JSONResponse:
            refusal = guard.refusal(request)
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

    return [
        Route("/v1/events", endpoint(api.list_events), methods=["GET"]),
        Route("/v1/events/{event_id}", endpoint(api.get_event), methods=["GET"]),
        Route("/v1/events/{event_id}/runs", endpoint(api.event_runs), methods=["GET"]),
        Route("/v1/runs/{run_id}", endpoint(api.get_run), methods=["GET"]),
        Route("/v1/runs/{run_id}", endpoint(api.cancel_run), methods=["DELETE"]),
        Route("/v1/runs/{run_id}/jobs", endpoint(api.run_jobs), methods=["GET"]),
        Route("/v1/cancellations", endpoint(api.bulk_cancel), methods=["POST"]),
        *inngest_gql.routes(engine, config),
    ]


class _Api:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = engine.store

    def ok(self, data: Any) -> JSONResponse:
        return JSONResponse({"data": data, "metadata": {"fetched_at": iso(self.engine.clock.now_ms())}})

    async def list_events(self, request: Request) -> JSONResponse:
        params = request.query_params
        limit = max(1, min(_int(params.get("limit"), "limit") or DEFAULT_EVENTS, MAX_EVENTS))
        cursor = params.get("cursor")
        before = _ulid(cursor, "Invalid cursor query parameter") if cursor else None
        now = self.engine.clock.now_ms()
        newest = _time(params.get("received_before"), "received_before")
        oldest = _time(params.get("received_after"), "received_after")
        events = await self.store.list_events(
            EventFilter(
                name=params.get("name") or None,
                since=oldest if oldest is not None else now - EVENTS_WINDOW_MS,
                until=(newest if newest is not None else now) + 1,
                before=before,
                system=False,
                limit=limit,
            )
        )
        return self.ok([event_json(e) for e in events])

    async def get_event(self, request: Request) -> JSONResponse:
        event_id = _ulid(request.path_params["event_id"], "Invalid event ID")
        found = await self.store.get_events([event_id])
        if not found:
            raise ApiError(404, f"Event not found: {event_id}")
        return self.ok(event_json(found[0]))

    async def event_runs(self, request: Request) -> JSONResponse:
        event_id = _ulid(request.path_params["event_id"], "Invalid event ID")
        runs = (await self.store.runs_for_events([event_id], MAX_EVENT_RUNS))[event_id]
        events = await self.store.get_events([event_id]) if runs else []
        cron = cron_of(events[0]) if events else None
        return self.ok([run_json(r, cron=cron) for r in runs])

    async def get_run(self, request: Request) -> JSONResponse:
        run = await self._run(request)
        return self.ok(run_json(run, cron=await self._cron(run)))

    async def cancel_run(self, request: Request) -> JSONResponse:
        """Cancel a run; a run that already ended is left as it is (200, `cancelled: false`)."""
        run = await self._run(request)
        cancelled = await self.engine.cancel_run(run.id)
        after = await self.store.get_run(run.id) or run
        return self.ok({"run_id": run.id, "cancelled": cancelled, "status": REST_STATUS.get(after.status, "Unknown")})

    async def run_jobs(self, request: Request) -> JSONResponse:
        run = await self._run(request)
        return self.ok([job_json(job, run) for job in await self.store.run_jobs(run.id, MAX_JOBS)])

    async def bulk_cancel(self, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, f"request body is {len(body)} bytes, the limit is {MAX_BODY_BYTES}")
        try:
            payload = jsonutil.loads(body)
        except ValueError as exc:
            raise ApiError(400, f"Invalid cancellation request: the body is not valid JSON ({exc})") from None
        await self.engine.refresh_registry()
        now = self.engine.clock.now_ms()
        try:
            cancellation = parse_request(payload, self.engine, now)
        except CancellationError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return self.ok(await cancel_runs(self.engine, cancellation, now))

    async def _run(self, request: Request) -> Run:
        run_id = _ulid(request.path_params["run_id"], "Invalid run ID")
        run = await self.store.get_run(run_id)
        if run is None:
            raise ApiError(404, f"Unable to load function run: {run_id} not found")
        return run

    async def _cron(self, run: Run) -> str | None:
        events = await self.store.get_events(run.event_ids[:1])
        return cron_of(events[0]) if events else None


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
