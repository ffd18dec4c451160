"""The dashboard's run pages: the run list with its search, a run with its timeline, and the
cancel and rerun actions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from outlast.core import jsonutil
from outlast.core.events import FUNCTION_FAILED
from outlast.core.models import EventEffect, EventFilter, EventRecord, Run
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.runtime.rerun import UNSET
from outlast.server import actions, reads
from outlast.server.body import read_form
from outlast.server.dashboard.render import redirect, render
from outlast.server.dashboard.timeline import BadPageError, invoked_children, step_label, timeline, trace_page
from outlast.server.services import services


async def runs(request: Request) -> Response:
    engine = services(request).engine
    try:
        query = reads.parse_run_query(request.query_params, engine.clock.now_ms())
    except reads.BadQueryError as exc:
        return render(request, "error.html", status=400, message=str(exc))
    result = await reads.runs_page(engine, query)
    if result.search == "run" and result.runs and not request.headers.get("x-live"):
        return redirect(f"/runs/{result.runs[0].id}")
    await engine.refresh_registry()
    functions = sorted((f.app_id, f.id) for f in engine.registry.functions.values())
    apps = sorted({a for a, _ in functions} | ({query.app_id} if query.app_id else set()))
    return render(
        request,
        "runs.html",
        nav="runs",
        query=query,
        page=result,
        functions=functions,
        apps=apps,
        statuses=reads.STATUSES,
        ranges=list(reads.RANGES),
        live="runs" if query.cursor is None else "",
    )


async def run(request: Request) -> Response:
    engine = services(request).engine
    detail = await reads.run_detail(engine, request.path_params["run_id"])
    if detail is None:
        return render(
            request,
            "error.html",
            status=404,
            message=f"No run {request.path_params['run_id']!r}.",
            title="Run not found",
        )
    try:
        page = trace_page(detail.run, request.query_params.get("steps_page"))
    except BadPageError as exc:
        return render(request, "error.html", status=400, message=str(exc), back=f"/runs/{detail.run.id}")
    children = await _child_events(engine, [c[0] for c in detail.links.children])
    now = engine.clock.now_ms()
    return render(
        request,
        "run.html",
        nav="runs",
        d=detail,
        run=detail.run,
        now=now,
        tl=timeline(detail.run, now, invoked_children(children), page=page),
        failure_runs=await _failure_handlers(engine, detail.run),
        failure_of=_failed_run(detail.events),
        from_step=await _from_step(engine, detail),
        live="" if detail.run.ended_at else f"run:{detail.run.id}",
    )


async def cancel(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        await actions.cancel(services(request).engine, run_id)
    except OutlastError as exc:
        return redirect(f"/runs/{run_id}", message=str(exc), kind="error")
    return redirect(f"/runs/{run_id}", message="Run cancelled.")


async def rerun_form(request: Request) -> Response:
    detail = await reads.run_detail(services(request).engine, request.path_params["run_id"])
    if detail is None:
        return render(request, "error.html", status=404, message="No such run.", title="Run not found")
    key = request.query_params.get("step", "")
    step = next((s for s in detail.run.steps if key in (s.key, s.id)), None)
    if step is None:
        return render(
            request, "error.html", status=404, message=f"This run has no step {key!r}.", title="Step not found"
        )
    return render(
        request,
        "rerun.html",
        nav="runs",
        run=detail.run,
        step=step,
        label=step_label(detail.run.steps, step.key),
        output=jsonutil.dumps(step.output) if step.status == "completed" else "null",
    )


async def rerun(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    fields = await read_form(request)
    from_step = fields.get("from_step") or None
    output: Any = UNSET
    try:
        if from_step and fields.get("mode") == "output":
            output = actions.parse_json(fields.get("output", ""), "output")
        new_id = await actions.rerun_run(services(request).engine, run_id, from_step=from_step, output=output)
    except OutlastError as exc:
        if from_step:
            return render(
                request, "error.html", status=400, message=str(exc), title="Rerun refused", back=f"/runs/{run_id}"
            )
        return redirect(f"/runs/{run_id}", message=str(exc), kind="error")
    what = f"from step {from_step!r}" if from_step else "from the start"
    return redirect(f"/runs/{new_id}", message=f"Rerun of {run_id} started {what}.")


async def _from_step(engine: Engine, detail: reads.RunDetail) -> str | None:
    """How the trace names the step a rerun started from: in this run once it ran there, else in
    the run it reran (before, this run holds only the steps ahead of it)."""
    key, origin_id = detail.links.from_step_key, detail.links.rerun_of
    if key is None:
        return None
    found = step_label(detail.run.steps, key)
    if found is None and origin_id is not None and (origin := await engine.reads.get_run(origin_id)) is not None:
        found = step_label(origin.steps, key)
    return found


async def _failure_handlers(engine: Engine, run: Run) -> list[EventEffect]:
    """The runs a failed run's `inngest/function.failed` event started: its `on_failure` handler
    (and any function that handles every failure). The event was ingested in the transaction that
    failed the run, with an id of that moment: a read of that millisecond finds it."""
    if run.status != "failed" or run.ended_at is None:
        return []
    window = EventFilter(name=FUNCTION_FAILED, since=run.ended_at, until=run.ended_at + 1, limit=1000)
    for event in await engine.reads.list_events(window):
        if isinstance(event.data, dict) and event.data.get("run_id") == run.id:
            return [x for x in await engine.reads.event_effects(event.id) if x.effect == "started"]
    return []


def _failed_run(events: list[EventRecord]) -> str | None:
    """The run whose failure this run handles (its trigger is that run's `function.failed`)."""
    first = events[0] if events else None
    if first is None or first.name != FUNCTION_FAILED or not isinstance(first.data, dict):
        return None
    run_id = first.data.get("run_id")
    return run_id if isinstance(run_id, str) else None


async def _child_events(engine: Engine, child_ids: list[str]) -> list[tuple[str, Any]]:
    out = []
    for child_id in child_ids:
        child = await engine.reads.get_run(child_id)
        if child is None or not child.event_ids:
            continue
        found = await engine.reads.get_events(child.event_ids[:1])
        if found:
            out.append((child_id, found[0].data))
    return out
