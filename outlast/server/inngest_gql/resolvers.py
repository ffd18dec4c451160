"""The root fields of the GraphQL subset: each reads through the request's `Loader` and answers
with the objects of `objects.py`. Bad ids and missing records are `QueryError`s (a GraphQL
error with that message), as Inngest's resolvers answer them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from outlast.core import jsonutil
from outlast.core.models import EventFilter, Run
from outlast.server.inngest_gql.loader import Loader, QueryError
from outlast.server.inngest_gql.objects import (
    event_v1,
    event_v2,
    function_object,
    function_run,
    function_run_v2,
    stream_item,
)
from outlast.server.inngest_gql.trace import root_span, span_output
from outlast.server.inngest_shapes import cron_of, iso, parse_ulid, ulid_ms

#: the dev server lists at most this many events in `events` (cqrs.MaxEvents)
MAX_EVENTS = 51
#: and looks this far back (cqrs.WorkspaceEventsOpts defaults)
EVENTS_WINDOW_MS = 3_600_000
MAX_STREAM = 1000

Resolver = Callable[..., Awaitable[Any]]
#: graphql.GraphQLResolveInfo (generic from graphql-core 3.3 on, plain before)
Info = Any


def _loader(info: Info) -> Loader:
    loader: Loader = info.context["loader"]
    return loader


def _ulid(value: Any, what: str) -> str:
    parsed = parse_ulid(value)
    if parsed is None:
        raise QueryError(f"error parsing {what}: {value!r} is not a ULID")
    return parsed


async def _run(loader: Loader, run_id: Any) -> Run:
    run = await loader.run(_ulid(run_id, "runID"))
    if run is None:
        raise QueryError(f"error retrieving run: run {run_id!r} not found")
    return run


async def run(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    loader = _loader(info)
    return function_run_v2(loader, await _run(loader, args["runID"]))


async def run_trace(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    loader = _loader(info)
    return root_span(loader, await _run(loader, args["runID"]))


async def run_trigger(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    loader = _loader(info)
    found = await _run(loader, args["runID"])
    events = await loader.events(found.event_ids)
    cron = cron_of(events[0]) if events else None
    names = {e.name for e in events}
    return {
        "eventName": None if cron or len(names) != 1 else events[0].name,
        "IDs": found.event_ids,
        "payloads": [jsonutil.dumps(e.to_dict()) for e in events],
        "timestamp": iso(min((ulid_ms(i) for i in found.event_ids), default=found.created_at)),
        "isBatch": len(found.event_ids) > 1,
        "batchID": None,
        "cron": cron,
    }


async def run_trace_span_output(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    return await span_output(_loader(info), args["outputID"])


async def function_run_v1(_root: Any, info: Info, **args: Any) -> dict[str, Any] | None:
    loader = _loader(info)
    found = await loader.run(_ulid(args["query"]["functionRunId"], "functionRunId"))
    return None if found is None else function_run(loader, found)


async def event(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    loader = _loader(info)
    event_id = _ulid(args["query"]["eventId"], "eventId")
    found = await loader.event(event_id)
    if found is None:
        raise QueryError(f"event {event_id} not found")
    return event_v1(loader, found)


async def event_2(_root: Any, info: Info, **args: Any) -> dict[str, Any]:
    loader = _loader(info)
    event_id = _ulid(args["id"], "id")
    found = await loader.event(event_id)
    if found is None:
        raise QueryError(f"event {event_id} not found")
    return event_v2(loader, found)


async def events(_root: Any, info: Info, **args: Any) -> list[dict[str, Any]]:
    """The latest events of the last hour, newest first (internal events left out)."""
    loader = _loader(info)
    cursor = args["query"].get("lastEventId")
    now = loader.now_ms()
    found = await loader.engine.reads.list_events(
        EventFilter(
            since=now - EVENTS_WINDOW_MS,
            until=now + 1,
            before=_ulid(cursor, "lastEventId") if cursor else None,
            system=False,
            limit=MAX_EVENTS,
        )
    )
    loader.remember_events(found)
    return [event_v1(loader, e) for e in found]


async def stream(_root: Any, info: Info, **args: Any) -> list[dict[str, Any]]:
    """Events newest first with the runs each started: `before`/`after` are event ids."""
    loader = _loader(info)
    query = args["query"]
    limit = query.get("limit")
    if not isinstance(limit, int) or limit < 1:
        raise QueryError("stream: limit must be a positive integer")
    before = _ulid(query["before"], "before") if query.get("before") else None
    after = _ulid(query["after"], "after") if query.get("after") else None
    found = await loader.engine.reads.list_events(
        EventFilter(
            before=before,
            since=ulid_ms(after) if after else None,
            system=bool(query.get("includeInternalEvents")),
            limit=min(limit, MAX_STREAM) + (1 if after else 0),
        )
    )
    found = [e for e in found if after is None or e.id > after][: min(limit, MAX_STREAM)]
    loader.remember_events(found)
    runs = await loader.runs_of_events([e.id for e in found])
    return [stream_item(loader, e, runs[e.id]) for e in found]


async def functions(_root: Any, info: Info, **_args: Any) -> list[dict[str, Any]]:
    loader = _loader(info)
    await loader.engine.refresh_registry()
    return [
        function_object(loader, f.app_id, f.id)
        for f in sorted(loader.engine.registry.functions.values(), key=lambda f: (f.app_id, f.id))
    ]


async def function_by_slug(_root: Any, info: Info, **args: Any) -> dict[str, Any] | None:
    loader = _loader(info)
    await loader.engine.refresh_registry()
    found = loader.engine.registry.by_slug(args["query"]["functionSlug"])
    return None if found is None else function_object(loader, found.app_id, found.id)


RESOLVERS: dict[str, Resolver] = {
    "run": run,
    "runTrace": run_trace,
    "runTrigger": run_trigger,
    "runTraceSpanOutputByID": run_trace_span_output,
    "functionRun": function_run_v1,
    "event": event,
    "eventV2": event_2,
    "events": events,
    "stream": stream,
    "functions": functions,
    "functionBySlug": function_by_slug,
}
