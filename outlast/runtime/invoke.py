"""Invoking a function: a run of it started now with given data, through Inngest's invoke event
and the engine's one send path (the dashboard's Invoke, `POST /api/.../invoke` and `app.invoke`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outlast.core.events import FUNCTION_INVOKED
from outlast.core.models import RunFilter
from outlast.errors import OutlastError

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine


async def invoke(
    engine: Engine,
    app_id: str,
    function_id: str,
    data: Any,
    *,
    id: str | None = None,
    trace: dict[str, str] | None = None,
) -> str:
    """Send the invoke event for the function with `data` as its data (and `id` as the sender's
    event id, which dedupes it); the event's id. Refused (OutlastError, nothing stored) when no
    live worker or synced app serves the function."""
    config = engine.function(app_id, function_id)
    if config is None:
        await engine.refresh_registry(force=True)
        config = engine.function(app_id, function_id)
    if config is None:
        raise OutlastError(f"no function {function_id!r} in app {app_id!r}")
    if not isinstance(data, dict):
        raise OutlastError(f"data: expected a JSON object, got {type(data).__name__}")
    if id is not None and (not isinstance(id, str) or not id):
        raise OutlastError(f"id: expected a non-empty string, got {id!r}")
    event = {"name": FUNCTION_INVOKED, "data": {**data, "_inngest": {"fn_id": config.slug}}}
    if id is not None:
        event["id"] = id
    [event_id] = await engine.send(event, trace=trace, allow_system=True)
    return event_id


async def invoke_run(
    engine: Engine,
    app_id: str,
    function_id: str,
    data: Any,
    *,
    id: str | None = None,
) -> str:
    """Invoke the function and return the id of the run the event started (planned with it, in
    the ingest's transaction).

    With `id`, the invoke is idempotent, as Inngest's event ids are: an id already taken in the
    last 24 h starts no run, and the run returned is the one the event that took it started.
    Concurrent invokes with one id are safe: the dedupe key is claimed in the ingest's transaction,
    so one event wins, and a loser's ingest returns only after the winner's has committed (SQLite
    writes one at a time; PostgreSQL's insert of a taken key waits for its holder's commit)."""
    event_id = await invoke(engine, app_id, function_id, {} if data is None else data, id=id)
    runs = await engine.store.list_runs(RunFilter(app_id=app_id, function_id=function_id, event_id=event_id, limit=1))
    if runs:
        return runs[0].id
    if id is not None:
        first = await engine.store.run_for_sender_id(
            app_id=app_id, function_id=function_id, sender_id=id, now_ms=engine.clock.now_ms()
        )
        if first is not None:
            return first
        raise OutlastError(
            f"id {id!r}: an event sent in the last 24 h took this id and started no run of {function_id!r};"
            " give this invoke another id"
        )
    raise OutlastError(f"invoke event {event_id} started no run of {function_id!r}")  # not expected
