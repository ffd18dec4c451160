"""The dashboard's pages and form actions. Every page has its own URL; every action is a real
form POST (CSRF token, redirect after success), so the pages work without JavaScript; the
little script in static/app.js adds live updates, JSON checking and charts."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from outlast.core import jsonutil
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.runtime.rerun import UNSET
from outlast.runtime.worker import WORKER_TIMEOUT_MS
from outlast.server import actions, reads
from outlast.server.auth import SESSION_COOKIE, SESSION_SECONDS, csrf_ok, safe_next
from outlast.server.config import ServerConfig
from outlast.server.dashboard.realtime_page import realtime_page
from outlast.server.dashboard.render import HERE, redirect, render
from outlast.server.dashboard.timeline import invoked_children, timeline
from outlast.server.services import Services

TEMPLATES_PER_NAME = 5


def routes(engine: Engine, config: ServerConfig) -> list[BaseRoute]:
    services = Services.of(engine, config)
    page = services.auth.page
    now = engine.clock.now_ms

    async def form(request: Request) -> dict[str, str]:
        return {k: str(v) for k, v in (await request.form()).items()}

    def failed(request: Request, exc: Exception, status: int = 400) -> Response:
        return render(request, "error.html", status=status, message=str(exc))

    # -- runs ----------------------------------------------------------------------------------

    async def runs(request: Request) -> Response:
        try:
            query = reads.parse_run_query(request.query_params, now())
        except reads.BadQueryError as exc:
            return failed(request, exc)
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
        detail = await reads.run_detail(engine, request.path_params["run_id"])
        if detail is None:
            return render(
                request,
                "error.html",
                status=404,
                message=f"No run {request.path_params['run_id']!r}.",
                title="Run not found",
            )
        children = await _child_events(engine, [c[0] for c in detail.links.children])
        return render(
            request,
            "run.html",
            nav="runs",
            d=detail,
            run=detail.run,
            now=now(),
            tl=timeline(detail.run, now(), invoked_children(children)),
            live="" if detail.run.ended_at else f"run:{detail.run.id}",
        )

    async def cancel(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        try:
            await actions.cancel(engine, run_id)
        except OutlastError as exc:
            return redirect(f"/runs/{run_id}", message=str(exc), kind="error")
        return redirect(f"/runs/{run_id}", message="Run cancelled.")

    async def rerun_form(request: Request) -> Response:
        detail = await reads.run_detail(engine, request.path_params["run_id"])
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
            output=jsonutil.dumps(step.output) if step.status == "completed" else "null",
        )

    async def rerun(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        fields = await form(request)
        from_step = fields.get("from_step") or None
        output: Any = UNSET
        try:
            if from_step and fields.get("mode") == "output":
                output = actions.parse_json(fields.get("output", ""), "output")
            new_id = await actions.rerun_run(engine, run_id, from_step=from_step, output=output)
        except OutlastError as exc:
            if from_step:
                return render(
                    request, "error.html", status=400, message=str(exc), title="Rerun refused", back=f"/runs/{run_id}"
                )
            return redirect(f"/runs/{run_id}", message=str(exc), kind="error")
        what = f"from step {from_step!r}" if from_step else "from the start"
        return redirect(f"/runs/{new_id}", message=f"Rerun of {run_id} started {what}.")

    # -- events --------------------------------------------------------------------------------

    async def events(request: Request) -> Response:
        try:
            result = await reads.events_page(engine, request.query_params)
        except reads.BadQueryError as exc:
            return failed(request, exc)
        names = [n for n in await engine.store.event_names() if not n.startswith("inngest/")]
        name = request.query_params.get("name") or (
            result.events[0].name if result.events and not result.events[0].name.startswith("inngest/") else ""
        )
        return render(
            request,
            "events.html",
            nav="events",
            page=result,
            names=names,
            send=await _send_form(engine, name, request.query_params.get("resend")),
        )

    async def event(request: Request) -> Response:
        event_id = request.path_params["event_id"]
        found = await engine.store.get_events([event_id])
        if not found:
            return render(request, "error.html", status=404, message=f"No event {event_id!r}.", title="Event not found")
        return render(
            request, "event.html", nav="events", event=found[0], effects=await engine.store.event_effects(event_id)
        )

    async def send(request: Request) -> Response:
        fields = await form(request)
        name = fields.get("name", "").strip()
        try:
            data = actions.parse_json(fields.get("data") or "{}", "data")
            event: dict[str, Any] = {"name": name, "data": data}
            if fields.get("id", "").strip():
                event["id"] = fields["id"].strip()
            [event_id] = await actions.send_event(engine, event)
        except OutlastError as exc:
            names = [n for n in await engine.store.event_names() if not n.startswith("inngest/")]
            result = await reads.events_page(engine, {})
            return render(
                request,
                "events.html",
                status=400,
                nav="events",
                page=result,
                names=names,
                send=await _send_form(engine, name, None, text=fields.get("data", ""), error=str(exc)),
            )
        return redirect(f"/events/{event_id}", message=f"Event {name!r} sent.")

    # -- functions -----------------------------------------------------------------------------

    async def functions(request: Request) -> Response:
        return render(
            request, "functions.html", nav="functions", views=await reads.functions_overview(engine), now=now()
        )

    async def function(request: Request) -> Response:
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
        recent = await engine.store.list_runs(reads.RunQuery(app_id=app_id, function_id=fn_id).filter(limit=10))
        return render(
            request,
            "function.html",
            nav="functions",
            v=view,
            recent=recent,
            now=now(),
            sample=await _sample_data(engine, view.config),
        )

    async def invoke(request: Request) -> Response:
        app_id, fn_id = request.path_params["app_id"], request.path_params["function_id"]
        fields = await form(request)
        try:
            data = actions.parse_json(fields.get("data") or "{}", "data")
            event_id = await actions.invoke(engine, app_id, fn_id, data)
        except OutlastError as exc:
            return redirect(f"/functions/{app_id}/{fn_id}", message=str(exc), kind="error")
        started = await _started_run(engine, event_id)
        target = f"/runs/{started}" if started else f"/events/{event_id}"
        return redirect(target, message=f"Invoked {fn_id}.")

    # -- apps, workers, bulk -------------------------------------------------------------------

    async def apps(request: Request) -> Response:
        return render(request, "apps.html", nav="apps", apps=await reads.apps_overview(engine))

    async def sync_app(request: Request) -> Response:
        url = (await form(request)).get("url", "").strip()
        result = await services.apps.sync(url)
        return redirect("/apps", message=result.message, kind="ok" if result.ok else "error")

    async def resync_app(request: Request) -> Response:
        app_id = request.path_params["app_id"]
        known = {a.id: a for a in await engine.store.list_apps()}
        if app_id not in known or not known[app_id].url:
            return redirect("/apps", message=f"App {app_id!r} has no URL to sync from.", kind="error")
        result = await services.apps.sync(str(known[app_id].url))
        return redirect("/apps", message=result.message, kind="ok" if result.ok else "error")

    async def remove_app(request: Request) -> Response:
        app_id = request.path_params["app_id"]
        if not await services.apps.remove(app_id):
            return redirect("/apps", message=f"No synced app {app_id!r}.", kind="error")
        return redirect("/apps", message=f"App {app_id!r} removed; its runs are kept.")

    async def workers(request: Request) -> Response:
        rows = await engine.store.list_workers(now() - WORKER_TIMEOUT_MS)
        return render(request, "workers.html", nav="workers", workers=rows, now=now())

    async def bulk(request: Request) -> Response:
        await engine.refresh_registry()
        functions_ = sorted((f.app_id, f.id) for f in engine.registry.functions.values())
        jobs = services.bulk.list()
        return render(
            request,
            "bulk.html",
            nav="bulk",
            jobs=jobs,
            functions=functions_,
            ranges=list(reads.RANGES),
            running=any(j.state == "running" for j in jobs),
        )

    async def bulk_start(request: Request) -> Response:
        fields = await form(request)
        action = fields.get("action")
        try:
            if action not in ("replay", "cancel"):
                raise OutlastError("choose Replay failed runs or Cancel runs")
            query = reads.parse_run_query(fields, now())
            job = await services.bulk.start(action, query.filter(before=None))  # type: ignore[arg-type]
        except (OutlastError, reads.BadQueryError) as exc:
            return redirect("/bulk", message=str(exc), kind="error")
        verb = "Replaying" if action == "replay" else "Cancelling"
        return redirect("/bulk", message=f"{verb} {job.total:,} runs.")

    # -- login ---------------------------------------------------------------------------------

    async def login_form(request: Request) -> Response:
        return render(
            request,
            "login.html",
            bare=True,
            next=safe_next(request.query_params.get("next")),
            locked=services.auth.locked,
            required=services.auth.required,
        )

    async def login(request: Request) -> Response:
        fields = await form(request)
        target = safe_next(fields.get("next"))
        if not await csrf_ok(request):
            return render(
                request,
                "login.html",
                bare=True,
                status=403,
                next=target,
                locked=services.auth.locked,
                required=True,
                error="The form expired. Nothing was changed; try again.",
            )
        if not services.auth.password_ok(fields.get("password", "")):
            await asyncio.sleep(0.3)  # slows guessing
            return render(
                request,
                "login.html",
                bare=True,
                status=401,
                next=target,
                locked=services.auth.locked,
                required=True,
                error="Wrong password. You are not logged in; nothing was changed.",
            )
        response = redirect(target)
        response.set_cookie(
            SESSION_COOKIE,
            services.auth.session_value(),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            path="/",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(request: Request) -> Response:
        if not await csrf_ok(request):
            return render(request, "error.html", status=403, message="The form expired; nothing was changed.")
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def with_config(handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            request.scope["outlast.config"] = config
            return await handler(request)  # type: ignore[no-any-return]

        return wrapped

    p = page
    c = with_config
    return [
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
        Route("/login", c(login_form), methods=["GET"]),
        Route("/login", c(login), methods=["POST"]),
        Route("/logout", c(logout), methods=["POST"]),
        Route("/", c(p(runs)), methods=["GET"]),
        Route("/runs/{run_id}", c(p(run)), methods=["GET"]),
        Route("/runs/{run_id}/cancel", c(p(cancel)), methods=["POST"]),
        Route("/runs/{run_id}/rerun", c(p(rerun_form)), methods=["GET"]),
        Route("/runs/{run_id}/rerun", c(p(rerun)), methods=["POST"]),
        Route("/events", c(p(events)), methods=["GET"]),
        Route("/events", c(p(send)), methods=["POST"]),
        Route("/events/{event_id}", c(p(event)), methods=["GET"]),
        Route("/functions", c(p(functions)), methods=["GET"]),
        Route("/functions/{app_id}/{function_id}", c(p(function)), methods=["GET"]),
        Route("/functions/{app_id}/{function_id}/invoke", c(p(invoke)), methods=["POST"]),
        Route("/apps", c(p(apps)), methods=["GET"]),
        Route("/apps", c(p(sync_app)), methods=["POST"]),
        Route("/apps/{app_id}/resync", c(p(resync_app)), methods=["POST"]),
        Route("/apps/{app_id}/remove", c(p(remove_app)), methods=["POST"]),
        Route("/workers", c(p(workers)), methods=["GET"]),
        Route("/realtime", c(p(realtime_page)), methods=["GET"]),
        Route("/bulk", c(p(bulk)), methods=["GET"]),
        Route("/bulk", c(p(bulk_start)), methods=["POST"]),
    ]


async def _child_events(engine: Engine, child_ids: list[str]) -> list[tuple[str, Any]]:
    out = []
    for child_id in child_ids:
        child = await engine.store.get_run(child_id)
        if child is None or not child.event_ids:
            continue
        found = await engine.store.get_events(child.event_ids[:1])
        if found:
            out.append((child_id, found[0].data))
    return out


async def _started_run(engine: Engine, event_id: str) -> str | None:
    for _ in range(10):  # the run exists once the ingest committed; this is only a read
        runs = [e for e in await engine.store.event_effects(event_id) if e.effect == "started"]
        if runs:
            return runs[0].run_id
        await asyncio.sleep(0.05)
    return None


async def _send_form(
    engine: Engine, name: str, resend: str | None, *, text: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """The Send event form: the name, a JSON payload (the event being sent again, or the newest of
    that name), and the last payloads of that name as templates."""
    from outlast.core.models import EventFilter

    templates = []
    if name:
        templates = [e.data for e in await engine.store.list_events(EventFilter(name=name, limit=TEMPLATES_PER_NAME))]
    if resend:
        found = await engine.store.get_events([resend])
        if found:
            name, text = found[0].name, text or jsonutil.dumps(found[0].data)
    if text is None:
        text = jsonutil.dumps(templates[0]) if templates else "{}"
    return {
        "name": name,
        "text": _pretty(text),
        "templates": templates,
        "error": error,
        "query": urlencode({"name": name}),
    }


async def _sample_data(engine: Engine, config: Any) -> str:
    """The invoke form's starting data: the newest payload of the function's first event trigger."""
    from outlast.core.config import EventTrigger
    from outlast.core.models import EventFilter

    names = [t.event for t in config.triggers if isinstance(t, EventTrigger)]
    if names:
        found = await engine.store.list_events(EventFilter(name=names[0], limit=1))
        if found:
            return _pretty(jsonutil.dumps(found[0].data))
    return "{}"


def _pretty(text: str) -> str:
    import json

    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
