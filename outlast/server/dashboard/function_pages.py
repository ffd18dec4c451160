"""The dashboard's function pages: functions with their numbers, a function with its recent runs,
and the invoke action (through the engine's one send path, with the request's trace)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from outlast.core import jsonutil
from outlast.core.config import EventTrigger, FunctionConfig
from outlast.core.models import EventFilter
from outlast.core.trace_context import trace_headers
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.server import actions, reads
from outlast.server.body import read_form
from outlast.server.dashboard.render import pretty_json, redirect, render
from outlast.server.services import services


async def functions(request: Request) -> Response:
    engine = services(request).engine
    views = await reads.functions_overview(engine)
    return render(request, "functions.html", nav="functions", views=views, now=engine.clock.now_ms())


async def function(request: Request) -> Response:
    engine = services(request).engine
    app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
    view = next(
        (v for v in await reads.functions_overview(engine) if (v.config.app_id, v.config.id) == (app_id, fn_id)),
        None,
    )
    if view is None:
        return render(
            request,
            "error.html",
            status=404,
            message=f"No function {fn_id!r} in app {app_id!r}.",
            title="Function not found",
        )
    recent = await engine.reads.list_runs(reads.RunQuery(app_id=app_id, function_id=fn_id).filter(limit=10))
    return render(
        request,
        "function.html",
        nav="functions",
        v=view,
        recent=recent,
        now=engine.clock.now_ms(),
        sample=await _sample_data(engine, view.config),
    )


async def invoke(request: Request) -> Response:
    engine = services(request).engine
    app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
    fields = await read_form(request)
    try:
        data = actions.parse_json(fields.get("data") or "{}", "data")
        event_id = await actions.invoke(engine, app_id, fn_id, data, trace=trace_headers(request.headers))
    except OutlastError as exc:
        return redirect(f"/functions/{app_id}/{fn_id}", message=str(exc), kind="error")
    started = await _started_run(engine, event_id)
    target = f"/runs/{started}" if started else f"/events/{event_id}"
    return redirect(target, message=f"Invoked {fn_id}.")


async def _started_run(engine: Engine, event_id: str) -> str | None:
    """The run the invoke event started: written in the ingest's own transaction, so one read finds
    it (none for a function that debounces or batches: the user lands on the event)."""
    runs = [e for e in await engine.reads.event_effects(event_id) if e.effect == "started"]
    return runs[0].run_id if runs else None


async def _sample_data(engine: Engine, config: FunctionConfig) -> str:
    """The invoke form's starting data: the newest payload of the function's first event trigger."""
    names = [t.event for t in config.triggers if isinstance(t, EventTrigger)]
    if names:
        found = await engine.reads.list_events(EventFilter(name=names[0], limit=1))
        if found:
            return pretty_json(jsonutil.dumps(found[0].data))
    return "{}"
