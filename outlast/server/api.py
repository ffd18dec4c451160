"""Our JSON read API under `/api/` (described at `/api/openapi.json`): runs with cursors and
search, a run with its trace, events with what they did, functions with their numbers, apps,
workers, bulk jobs, and a server-sent event stream. The dashboard reads the same data.

Errors are JSON `{"error": message}`: 400 for bad input (the message names it), 404 for unknown
ids, 413 for a body over the limit, 503 when the store is unavailable. No traceback reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.core.trace_context import trace_headers
from outlast.errors import OutlastError, StoreError
from outlast.runtime.engine import Engine
from outlast.runtime.rerun import UNSET
from outlast.runtime.worker import WORKER_TIMEOUT_MS
from outlast.server import actions, guards, reads, sync
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.bulk import Action
from outlast.server.openapi import openapi
from outlast.server.services import services
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
#: the run filters a bulk job takes from its body
BULK_FILTERS = ("app", "function", "status", "range", "since", "until")


class NotFoundError(Exception):
    pass


def endpoint(fn: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
    """An API handler behind the login guard; what it returns is the JSON answer, what it raises
    an error answer (404, 400 naming the bad input, 413, 503)."""

    async def handle(request: Request) -> Response:
        try:
            result = await fn(request)
        except NotFoundError as exc:
            return _error(404, str(exc))
        except BodyTooLargeError as exc:
            return _error(413, str(exc))
        except StoreError as exc:
            return _error(503, f"store unavailable, retry: {exc}")
        except (reads.BadQueryError, OutlastError) as exc:
            return _error(400, str(exc))
        return result if isinstance(result, Response) else JSONResponse(result)

    return guards.api(handle)


def _engine(request: Request) -> Engine:
    return services(request).engine


def _now(request: Request) -> int:
    return _engine(request).clock.now_ms()


# -- runs --------------------------------------------------------------------------------------


async def runs(request: Request) -> Any:
    query = reads.parse_run_query(request.query_params, _now(request))
    page = await reads.runs_page(_engine(request), query, counts=request.query_params.get("counts", "1") != "0")
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
    detail = await reads.run_detail(_engine(request), request.path_params["run_id"])
    if detail is None:
        raise NotFoundError(f"no run {request.path_params['run_id']!r}")
    return {
        "run": run_json(detail.run, steps=True),
        "events": [event_json(e) for e in detail.events],
        "logs": [log_json(line) for line in detail.logs],
        "links": links_json(detail.links),
    }


async def cancel(request: Request) -> Any:
    await actions.cancel(_engine(request), request.path_params["run_id"])
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
    run_id = request.path_params["run_id"]
    new_id = await actions.rerun_run(_engine(request), run_id, from_step=from_step, output=output)
    return {"run_id": new_id, "rerun_of": run_id}


# -- events ------------------------------------------------------------------------------------


async def events(request: Request) -> Any:
    page = await reads.events_page(_engine(request), request.query_params)
    return {
        "events": [{**event_json(e), "effects": [effect_json(x) for x in page.effects[e.id]]} for e in page.events],
        "next_cursor": page.next_cursor,
    }


async def event(request: Request) -> Any:
    event_id = request.path_params["event_id"]
    reads = _engine(request).reads
    found = await reads.get_events([event_id])
    if not found:
        raise NotFoundError(f"no event {event_id!r}")
    return {"event": event_json(found[0]), "effects": [effect_json(x) for x in await reads.event_effects(event_id)]}


async def send(request: Request) -> Any:
    payload = await _body(request)
    return {"ids": await actions.send_event(_engine(request), payload, trace=trace_headers(request.headers))}


# -- functions ---------------------------------------------------------------------------------


async def functions(request: Request) -> Any:
    views = await reads.functions_overview(_engine(request))
    return {"functions": [function_json(v.config, v.stats) for v in views]}


async def function(request: Request) -> Any:
    app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
    for view in await reads.functions_overview(_engine(request)):
        if (view.config.app_id, view.config.id) == (app_id, fn_id):
            return function_json(view.config, view.stats)
    raise NotFoundError(f"no function {fn_id!r} in app {app_id!r}")


async def invoke(request: Request) -> Any:
    body = await _body(request, default={})
    data = body.get("data", {}) if isinstance(body, dict) else body
    app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
    event_id = await actions.invoke(_engine(request), app_id, fn_id, data, trace=trace_headers(request.headers))
    return {"event_id": event_id}


async def metrics(request: Request) -> Any:
    views = await reads.functions_overview(_engine(request))
    return {
        "functions": [{"app_id": v.config.app_id, "function_id": v.config.id, **stats_json(v.stats)} for v in views]
    }


# -- apps and workers --------------------------------------------------------------------------


async def apps(request: Request) -> Any:
    return {"apps": [app_json(a) for a in await reads.apps_overview(_engine(request))]}


async def sync_app(request: Request) -> Any:
    body = await _body(request)
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str) or sync.url_problem(url):
        raise actions.ActionError("url: expected the app's serve URL, e.g. http://127.0.0.1:8000/api/inngest")
    found = services(request)
    result = await sync.sync_app_url(found.engine, url, production=found.config.production)
    return JSONResponse({"ok": result.ok, "message": result.message}, status_code=200 if result.ok else 502)


async def resync_app(request: Request) -> Any:
    app_id = request.path_params["app_id"]
    found = services(request)
    result = await sync.resync_app(found.engine, app_id, production=found.config.production)
    if result is None:
        raise NotFoundError(f"no synced app {app_id!r} with a URL")
    return JSONResponse({"ok": result.ok, "message": result.message}, status_code=200 if result.ok else 502)


async def remove_app(request: Request) -> Any:
    app_id = request.path_params["app_id"]
    if not await sync.remove_app(_engine(request), app_id):
        raise NotFoundError(
            f"no synced app {app_id!r} (apps served by local workers are not removed here: stop their workers)"
        )
    return {"removed": app_id}


async def workers(request: Request) -> Any:
    rows = await _engine(request).reads.list_workers(_now(request) - WORKER_TIMEOUT_MS)
    return {"workers": [worker_json(w) for w in services(request).connect.live(rows)]}


# -- bulk jobs and the live stream -------------------------------------------------------------


async def bulk_start(request: Request) -> Any:
    body = await _body(request)
    if not isinstance(body, dict) or body.get("action") not in ("replay", "cancel"):
        raise actions.ActionError('action: expected "replay" (failed runs of a function) or "cancel"')
    params = {k: str(v) for k, v in body.items() if k in BULK_FILTERS and v is not None}
    query = reads.parse_run_query(params, _now(request))
    action: Action = body["action"]
    job = await services(request).bulk.start(action, query.filter(before=None))
    return JSONResponse(job.to_json(), status_code=202)


async def bulk_list(request: Request) -> Any:
    return {"jobs": [j.to_json() for j in services(request).bulk.list()]}


async def bulk_job(request: Request) -> Any:
    job = services(request).bulk.jobs.get(request.path_params["job_id"])
    if job is None:
        raise NotFoundError(f"no bulk job {request.path_params['job_id']!r} (jobs are forgotten on restart)")
    return job.to_json()


async def stream(request: Request) -> Response:
    run_id = request.query_params.get("run") or None
    return StreamingResponse(
        services(request).live.stream(run_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def spec(_request: Request) -> Any:
    return openapi()


ROUTES: list[BaseRoute] = [
    Route("/api/openapi.json", endpoint(spec), methods=["GET"]),
    Route("/api/runs", endpoint(runs), methods=["GET"]),
    Route("/api/runs/{run_id}", endpoint(run), methods=["GET"]),
    Route("/api/runs/{run_id}/cancel", endpoint(cancel), methods=["POST"]),
    Route("/api/runs/{run_id}/rerun", endpoint(rerun), methods=["POST"]),
    Route("/api/events", endpoint(events), methods=["GET"]),
    Route("/api/events", endpoint(send), methods=["POST"]),
    Route("/api/events/{event_id}", endpoint(event), methods=["GET"]),
    Route("/api/functions", endpoint(functions), methods=["GET"]),
    Route("/api/functions/{app_id}/{function_id}", endpoint(function), methods=["GET"]),
    Route("/api/functions/{app_id}/{function_id}/invoke", endpoint(invoke), methods=["POST"]),
    Route("/api/metrics", endpoint(metrics), methods=["GET"]),
    Route("/api/apps", endpoint(apps), methods=["GET"]),
    Route("/api/apps", endpoint(sync_app), methods=["POST"]),
    Route("/api/apps/{app_id}/resync", endpoint(resync_app), methods=["POST"]),
    Route("/api/apps/{app_id}", endpoint(remove_app), methods=["DELETE"]),
    Route("/api/workers", endpoint(workers), methods=["GET"]),
    Route("/api/bulk", endpoint(bulk_list), methods=["GET"]),
    Route("/api/bulk", endpoint(bulk_start), methods=["POST"]),
    Route("/api/bulk/{job_id}", endpoint(bulk_job), methods=["GET"]),
    Route("/api/stream", guards.api(stream), methods=["GET"]),
]


async def _body(request: Request, default: Any = None) -> Any:
    raw = await read_body(request)
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
