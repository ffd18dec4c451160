"""Our JSON read API under `/api/` (described at `/api/openapi.json`): runs with cursors and
search, a run with its trace, events with what they did, functions with their numbers, apps,
workers, bulk jobs, and a server-sent event stream. The dashboard reads the same data.

Errors are JSON `{"error": message}`: 400 for bad input (the message names it), 404 for unknown
ids, 503 when the store is unavailable. No traceback reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.errors import OutlastError, StoreError
from outlast.runtime.engine import Engine
from outlast.runtime.rerun import UNSET
from outlast.runtime.worker import WORKER_TIMEOUT_MS
from outlast.server import actions, reads
from outlast.server.appsync import url_problem
from outlast.server.bulk import Action
from outlast.server.mode import ServerConfig
from outlast.server.openapi import openapi
from outlast.server.services import Services
from outlast.server.shapes import (
    app_json,
    counts_json,
    effect_json,
    event_json,
    function_json,
    links_json,
    log_json,
    run_json,
    stats_json,
    worker_json,
)

log = logging.getLogger("outlast.api")
MAX_BODY_BYTES = 16 * 1024 * 1024


class NotFoundError(Exception):
    pass


def routes(engine: Engine, config: ServerConfig) -> list[BaseRoute]:
    services = Services.of(engine, config)
    guard = services.auth.api
    now = engine.clock.now_ms

    def endpoint(fn: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                result = await fn(request)
            except NotFoundError as exc:
                return _error(404, str(exc))
            except (reads.BadQueryError, OutlastError) as exc:
                if isinstance(exc, StoreError):
                    return _error(503, f"store unavailable, retry: {exc}")
                return _error(400, str(exc))
            return result if isinstance(result, Response) else JSONResponse(result)

        return guard(handle)

    async def runs(request: Request) -> Any:
        query = reads.parse_run_query(request.query_params, now())
        page = await reads.runs_page(engine, query, counts=request.query_params.get("counts", "1") != "0")
        if page.error:
            raise reads.BadQueryError(f"q: {page.error}")
        return {
            "runs": [run_json(r) for r in page.runs],
            "next_cursor": page.next_cursor,
            "counts": counts_json(page.counts) if page.counts else None,
            "search": page.search,
            "scanned": page.scanned,
        }

    async def run(request: Request) -> Any:
        detail = await reads.run_detail(engine, request.path_params["run_id"])
        if detail is None:
            raise NotFoundError(f"no run {request.path_params['run_id']!r}")
        return {
            "run": run_json(detail.run, steps=True),
            "events": [event_json(e) for e in detail.events],
            "logs": [log_json(line) for line in detail.logs],
            "links": links_json(detail.links),
        }

    async def cancel(request: Request) -> Any:
        await actions.cancel(engine, request.path_params["run_id"])
        return {"cancelled": True, "run_id": request.path_params["run_id"]}

    async def rerun(request: Request) -> Any:
        body = await _body(request, default={})
        if not isinstance(body, dict):
            raise actions.ActionError('body: expected a JSON object like {"from_step": "id", "output": ...}')
        from_step = body.get("from_step")
        if from_step is not None and not isinstance(from_step, str):
            raise actions.ActionError("from_step: expected a step id")
        output = body.get("output", UNSET)
        if output is not UNSET and from_step is None:
            raise actions.ActionError("output: needs from_step (the step whose output it replaces)")
        new_id = await actions.rerun_run(engine, request.path_params["run_id"], from_step=from_step, output=output)
        return {"run_id": new_id, "rerun_of": request.path_params["run_id"]}

    async def events(request: Request) -> Any:
        page = await reads.events_page(engine, request.query_params)
        return {
            "events": [{**event_json(e), "effects": [effect_json(x) for x in page.effects[e.id]]} for e in page.events],
            "next_cursor": page.next_cursor,
        }

    async def event(request: Request) -> Any:
        event_id = request.path_params["event_id"]
        found = await engine.store.get_events([event_id])
        if not found:
            raise NotFoundError(f"no event {event_id!r}")
        return {
            "event": event_json(found[0]),
            "effects": [effect_json(x) for x in await engine.store.event_effects(event_id)],
        }

    async def send(request: Request) -> Any:
        return {"ids": await actions.send_event(engine, await _body(request))}

    async def functions(_request: Request) -> Any:
        return {"functions": [function_json(v.config, v.stats) for v in await reads.functions_overview(engine)]}

    async def function(request: Request) -> Any:
        app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
        for view in await reads.functions_overview(engine):
            if (view.config.app_id, view.config.id) == (app_id, fn_id):
                return function_json(view.config, view.stats)
        raise NotFoundError(f"no function {fn_id!r} in app {app_id!r}")

    async def invoke(request: Request) -> Any:
        body = await _body(request, default={})
        data = body.get("data", {}) if isinstance(body, dict) else body
        event_id = await actions.invoke(engine, request.path_params["app_id"], request.path_params["function_id"], data)
        return {"event_id": event_id}

    async def metrics(_request: Request) -> Any:
        views = await reads.functions_overview(engine)
        return {
            "functions": [{"app_id": v.config.app_id, "function_id": v.config.id, **stats_json(v.stats)} for v in views]
        }

    async def apps(_request: Request) -> Any:
        return {"apps": [app_json(a) for a in await reads.apps_overview(engine)]}

    async def sync_app(request: Request) -> Any:
        body = await _body(request)
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or url_problem(url):
            raise actions.ActionError("url: expected the app's serve URL, e.g. http://127.0.0.1:8000/api/inngest")
        result = await services.apps.sync(url)
        return JSONResponse({"ok": result.ok, "message": result.message}, status_code=200 if result.ok else 502)

    async def resync_app(request: Request) -> Any:
        app_id = request.path_params["app_id"]
        known = {a.id: a for a in await engine.store.list_apps()}
        if app_id not in known or not known[app_id].url:
            raise NotFoundError(f"no synced app {app_id!r} with a URL")
        result = await services.apps.sync(str(known[app_id].url))
        return JSONResponse({"ok": result.ok, "message": result.message}, status_code=200 if result.ok else 502)

    async def remove_app(request: Request) -> Any:
        if not await services.apps.remove(request.path_params["app_id"]):
            raise NotFoundError(
                f"no synced app {request.path_params['app_id']!r} (apps served by local "
                "workers are not removed here: stop their workers)"
            )
        return {"removed": request.path_params["app_id"]}

    async def workers(_request: Request) -> Any:
        rows = await engine.store.list_workers(now() - WORKER_TIMEOUT_MS)
        return {"workers": [worker_json(w) for w in rows]}

    async def bulk_start(request: Request) -> Any:
        body = await _body(request)
        if not isinstance(body, dict) or body.get("action") not in ("replay", "cancel"):
            raise actions.ActionError('action: expected "replay" (failed runs of a function) or "cancel"')
        params = {
            k: str(v)
            for k, v in body.items()
            if k in ("app", "function", "status", "range", "since", "until") and v is not None
        }
        query = reads.parse_run_query(params, now())
        action: Action = body["action"]
        job = await services.bulk.start(action, query.filter(before=None))
        return JSONResponse(job.to_json(), status_code=202)

    async def bulk_list(_request: Request) -> Any:
        return {"jobs": [j.to_json() for j in services.bulk.list()]}

    async def bulk_job(request: Request) -> Any:
        job = services.bulk.jobs.get(request.path_params["job_id"])
        if job is None:
            raise NotFoundError(f"no bulk job {request.path_params['job_id']!r} (jobs are forgotten on restart)")
        return job.to_json()

    async def stream(request: Request) -> Response:
        run_id = request.query_params.get("run") or None
        return StreamingResponse(
            services.live.stream(run_id, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    async def spec(_request: Request) -> Any:
        return openapi()

    e = endpoint
    return [
        Route("/api/openapi.json", e(spec), methods=["GET"]),
        Route("/api/runs", e(runs), methods=["GET"]),
        Route("/api/runs/{run_id}", e(run), methods=["GET"]),
        Route("/api/runs/{run_id}/cancel", e(cancel), methods=["POST"]),
        Route("/api/runs/{run_id}/rerun", e(rerun), methods=["POST"]),
        Route("/api/events", e(events), methods=["GET"]),
        Route("/api/events", e(send), methods=["POST"]),
        Route("/api/events/{event_id}", e(event), methods=["GET"]),
        Route("/api/functions", e(functions), methods=["GET"]),
        Route("/api/functions/{app_id}/{function_id}", e(function), methods=["GET"]),
        Route("/api/functions/{app_id}/{function_id}/invoke", e(invoke), methods=["POST"]),
        Route("/api/metrics", e(metrics), methods=["GET"]),
        Route("/api/apps", e(apps), methods=["GET"]),
        Route("/api/apps", e(sync_app), methods=["POST"]),
        Route("/api/apps/{app_id}/resync", e(resync_app), methods=["POST"]),
        Route("/api/apps/{app_id}", e(remove_app), methods=["DELETE"]),
        Route("/api/workers", e(workers), methods=["GET"]),
        Route("/api/bulk", e(bulk_list), methods=["GET"]),
        Route("/api/bulk", e(bulk_start), methods=["POST"]),
        Route("/api/bulk/{job_id}", e(bulk_job), methods=["GET"]),
        Route("/api/stream", guard(stream), methods=["GET"]),
    ]


async def _body(request: Request, default: Any = None) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise actions.ActionError(f"request body is {len(raw)} bytes, the limit is {MAX_BODY_BYTES}")
    if not raw.strip():
        if default is not None:
            return default
        raise actions.ActionError("request body: expected JSON")
    try:
        return jsonutil.loads(raw)
    except ValueError as exc:
        raise actions.ActionError(f"request body is not valid JSON: {exc}") from None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
