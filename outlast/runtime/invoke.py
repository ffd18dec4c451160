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
    engine: Engine, app_id: str, function_id: str, data: Any, *, trace: dict[str, str] | None = None
) -> str:
    """Send the invoke event for the function with `data` as its data; the event's id. Refused
    (OutlastError, nothing stored) when no live worker or synced app serves the function."""
    config = engine.function(app_id, function_id)
    if config is None:
        await engine.refresh_registry(force=True)
        config = engine.function(app_id, function_id)
    if config is None:
        raise OutlastError(f"no function {function_id!r} in app {app_id!r}")
    if not isinstance(data, dict):
        raise OutlastError(f"data: expected a JSON object, got {type(data).__name__}")
    event = {"name": FUNCTION_INVOKED, "data": {**data, "_inngest": {"fn_id": config.slug}}}
    [event_id] = await engine.send(event, trace=trace, allow_system=True)
    return event_id


async def invoke_run(engine: Engine, app_id: str, function_id: str, data: Any) -> str:
    """Invoke the function and return the id of the run the event started (planned with it, in
    the ingest's transaction)."""
    event_id = await invoke(engine, app_id, function_id, {} if data is None else data)
    runs = await engine.store.list_runs(RunFilter(app_id=app_id, function_id=function_id, event_id=event_id, limit=1))
    if not runs:
        raise OutlastError(f"invoke event {event_id} started no run of {function_id!r}")  # not expected
    return runs[0].id
