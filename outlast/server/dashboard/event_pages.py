"""The dashboard's event pages: the event list with the Send event form, an event with what it
did, and the send action (through the engine's one send path, with the request's trace)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from outlast.core import jsonutil
from outlast.core.models import EventFilter
from outlast.core.schema_example import example_from_schema, typed_trigger_schema
from outlast.core.trace_context import trace_headers
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.server import actions, reads
from outlast.server.body import read_form
from outlast.server.dashboard.render import pretty_json, redirect, render
from outlast.server.services import services

TEMPLATES_PER_NAME = 5


async def events(request: Request) -> Response:
    engine = services(request).engine
    try:
        result = await reads.events_page(engine, request.query_params)
    except reads.BadQueryError as exc:
        return render(request, "error.html", status=400, message=str(exc))
    name = request.query_params.get("name") or (
        result.events[0].name if result.events and not result.events[0].name.startswith("inngest/") else ""
    )
    return render(
        request,
        "events.html",
        nav="events",
        page=result,
        names=await _user_event_names(engine),
        send=await _send_form(engine, name, request.query_params.get("resend")),
    )


async def event(request: Request) -> Response:
    reads = services(request).engine.reads
    event_id = request.path_params["event_id"]
    found = await reads.get_events([event_id])
    if not found:
        return render(request, "error.html", status=404, message=f"No event {event_id!r}.", title="Event not found")
    return render(request, "event.html", nav="events", event=found[0], effects=await reads.event_effects(event_id))


async def send(request: Request) -> Response:
    engine = services(request).engine
    fields = await read_form(request)
    name = fields.get("name", "").strip()
    try:
        data = actions.parse_json(fields.get("data") or "{}", "data")
        event: dict[str, Any] = {"name": name, "data": data}
        if fields.get("id", "").strip():
            event["id"] = fields["id"].strip()
        [event_id] = await actions.send_event(engine, event, trace=trace_headers(request.headers))
    except OutlastError as exc:
        return render(
            request,
            "events.html",
            status=400,
            nav="events",
            page=await reads.events_page(engine, {}),
            names=await _user_event_names(engine),
            send=await _send_form(engine, name, None, text=fields.get("data", ""), error=str(exc)),
        )
    return redirect(f"/events/{event_id}", message=f"Event {name!r} sent.")


async def _user_event_names(engine: Engine) -> list[str]:
    return [n for n in await engine.reads.event_names() if not n.startswith("inngest/")]


async def _send_form(
    engine: Engine, name: str, resend: str | None, *, text: str | None = None, error: str | None = None
) -> dict[str, Any]:
    """The Send event form: the name, a JSON payload (the event being sent again, or the newest of
    that name), and the last payloads of that name as templates."""
    templates = []
    if name:
        templates = [e.data for e in await engine.reads.list_events(EventFilter(name=name, limit=TEMPLATES_PER_NAME))]
    if resend:
        found = await engine.reads.get_events([resend])
        if found:
            name, text = found[0].name, text or jsonutil.dumps(found[0].data)
    if text is None and not templates and name:  # a typed trigger's event never sent yet: its example
        configs = [f.config for fns in engine.registry.apps().values() for f in fns]
        schema = typed_trigger_schema(configs, name)
        text = None if schema is None else jsonutil.dumps(example_from_schema(schema))
    if text is None:
        text = jsonutil.dumps(templates[0]) if templates else "{}"
    return {
        "name": name,
        "text": pretty_json(text),
        "templates": templates,
        "error": error,
        "query": urlencode({"name": name}),
    }
