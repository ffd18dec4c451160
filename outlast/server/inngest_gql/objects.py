"""Outlast's records as the GraphQL objects of Inngest's schema (plain dicts).

Fields that need another read are callables: graphql-core's default resolver calls a callable
field value with `(info, **arguments)`, so the read happens only when a query asks for the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from outlast.core import jsonutil
from outlast.core.config import CronTrigger, EventTrigger, FunctionConfig
from outlast.core.models import EventRecord, Run
from outlast.server.inngest_gql.loader import Loader
from outlast.server.inngest_shapes import NIL_UUID, app_uuid, cron_of, function_uuid, iso, received_at, run_output

#: FunctionRunStatus by Outlast run status
RUN_STATUS = {
    "queued": "QUEUED",
    "running": "RUNNING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
    "skipped": "SKIPPED",
}
WORKSPACE = {"id": "local"}
Lazy = Callable[..., Any]


def lazy(make: Callable[[], Any]) -> Lazy:
    """A field value computed when the query asks for it (`make` may return an awaitable)."""
    return lambda _info, **_args: make()


def output_text(run: Run) -> str | None:
    """A run's output as JSON text: the return value, or the error of a failed run."""
    value = run_output(run)
    return None if value is None and run.status != "completed" else jsonutil.dumps(value)


def function_object(loader: Loader, app_id: str, function_id: str) -> dict[str, Any]:
    config = loader.function(app_id, function_id)
    return {
        "id": function_uuid(app_id, function_id),
        "name": config.name if config else function_id,
        "slug": f"{app_id}-{function_id}",
        "config": jsonutil.dumps(config.to_json()) if config else "{}",
        "concurrency": config.concurrency[0].limit if config and config.concurrency else 0,
        "triggers": _triggers(config),
        "url": (config.runtime.url or "") if config else "",
        "appID": app_id,
    }


def _triggers(config: FunctionConfig | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for trigger in config.triggers if config else ():
        if isinstance(trigger, EventTrigger):
            out.append({"type": "EVENT", "value": trigger.event, "condition": trigger.expression})
        elif isinstance(trigger, CronTrigger):
            out.append({"type": "CRON", "value": trigger.cron, "condition": None})
    return out


def function_run(loader: Loader, run: Run) -> dict[str, Any]:
    """`FunctionRun`, the dev server's older run type (an event's runs, the event stream)."""

    async def events() -> list[dict[str, Any]]:
        return [event_v1(loader, e) for e in await loader.events(run.event_ids)]

    async def first_event() -> dict[str, Any] | None:
        found = await events()
        return found[0] if found else None

    async def cron() -> str | None:
        return cron_of(await loader.event(run.event_ids[0])) if run.event_ids else None

    return {
        "id": run.id,
        "functionID": function_uuid(run.app_id, run.function_id),
        "function": lazy(lambda: function_object(loader, run.app_id, run.function_id)),
        "workspace": WORKSPACE,
        "event": lazy(first_event),
        "events": lazy(events),
        "batchID": None,
        "status": RUN_STATUS[run.status],
        "startedAt": iso(run.started_at or run.created_at),
        "finishedAt": iso(run.ended_at),
        "output": output_text(run),
        "eventID": run.event_ids[0] if run.event_ids else "",
        "cron": lazy(cron),
    }


def function_run_v2(loader: Loader, run: Run) -> dict[str, Any]:
    """`FunctionRunV2`, what `run(runID:)` answers."""
    from outlast.server.inngest_gql.trace import root_span

    async def first_event() -> EventRecord | None:
        return await loader.event(run.event_ids[0]) if run.event_ids else None

    async def event_name() -> str | None:
        event = await first_event()
        return None if event is None or cron_of(event) else event.name

    async def cron() -> str | None:
        return cron_of(await first_event())

    async def trace() -> dict[str, Any] | None:
        full = await loader.run(run.id)
        return None if full is None else root_span(loader, full)

    ended = run.status in ("completed", "failed", "cancelled")
    return {
        "id": run.id,
        "appID": app_uuid(run.app_id),
        "functionID": function_uuid(run.app_id, run.function_id),
        "function": lazy(lambda: function_object(loader, run.app_id, run.function_id)),
        "traceID": run.id,
        "queuedAt": iso(run.created_at),
        "startedAt": iso(run.started_at),
        "endedAt": iso(run.ended_at) if ended else None,
        "status": RUN_STATUS[run.status],
        "sourceID": run.parent_run_id,
        "triggerIDs": run.event_ids,
        "eventName": lazy(event_name),
        "isBatch": len(run.event_ids) > 1,
        "batchCreatedAt": None,
        "cronSchedule": lazy(cron),
        "output": output_text(run),
        "trace": lazy(trace),
        "hasAI": False,
        "isDeferred": False,
    }


def event_v1(loader: Loader, event: EventRecord) -> dict[str, Any]:
    """`Event`: `payload` is the event's data as JSON text, `raw` the whole event."""

    async def runs() -> list[Run]:
        return (await loader.runs_of_events([event.id]))[event.id]

    async def function_runs() -> list[dict[str, Any]]:
        return [function_run(loader, r) for r in await runs()]

    async def status() -> str:
        return event_status(await runs())

    async def pending() -> int:
        return sum(r.status in ("queued", "running") for r in await runs())

    async def total() -> int:
        return len(await runs())

    return {
        "id": event.id,
        "externalID": event.public_id(),
        "workspace": WORKSPACE,
        "name": event.name,
        "createdAt": iso(event.ts),
        "payload": jsonutil.dumps(event.data),
        "schema": None,
        "status": lazy(status),
        "pendingRuns": lazy(pending),
        "totalRuns": lazy(total),
        "raw": jsonutil.dumps(event.to_dict()),
        "functionRuns": lazy(function_runs),
    }


def event_status(runs: list[Run]) -> str:
    """Inngest's `EventStatus` from the runs an event started."""
    if not runs:
        return "NO_FUNCTIONS"
    failed = sum(r.status == "failed" for r in runs)
    if failed:
        return "FAILED" if failed == len(runs) else "PARTIALLY_FAILED"
    return "RUNNING" if any(r.status in ("queued", "running") for r in runs) else "COMPLETED"


def event_v2(loader: Loader, event: EventRecord) -> dict[str, Any]:
    """`EventV2`: `idempotencyKey` is the event's `id` (the internal id when the sender gave none)."""

    async def runs() -> list[dict[str, Any]]:
        return [function_run_v2(loader, r) for r in (await loader.runs_of_events([event.id]))[event.id]]

    return {
        "envID": NIL_UUID,
        "id": event.id,
        "idempotencyKey": event.public_id(),
        "name": event.name,
        "occurredAt": iso(event.ts),
        "raw": jsonutil.dumps(event.to_dict()),
        "receivedAt": iso(received_at(event)),
        "runs": lazy(runs),
        "version": "",
    }


def stream_item(loader: Loader, event: EventRecord, runs: list[Run]) -> dict[str, Any]:
    """An event of the dev server's stream with the runs it started; a cron tick shows its schedule."""
    cron = cron_of(event)
    return {
        "id": event.id,
        "trigger": cron or event.name,
        "type": "CRON" if cron else "EVENT",
        "createdAt": iso(event.ts),
        "runs": [function_run(loader, r) for r in runs],
        "inBatch": any(len(r.event_ids) > 1 for r in runs),
    }
