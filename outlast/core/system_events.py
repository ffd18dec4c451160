"""The events Outlast emits when a run ends (Inngest's names and data shapes)."""

from __future__ import annotations

from typing import Any

from outlast.core.events import FUNCTION_CANCELLED, FUNCTION_FAILED, FUNCTION_FINISHED
from outlast.core.expressions import lookup
from outlast.core.ids import new_ulid
from outlast.core.models import EventRecord

_NO_ECHO = (FUNCTION_FAILED, FUNCTION_FINISHED, FUNCTION_CANCELLED)


def run_ended_events(
    *,
    app_id: str,
    function_id: str,
    run_id: str,
    trigger_events: list[dict[str, Any]],
    status: str,
    output: Any,
    error: dict[str, Any] | None,
    now_ms: int,
) -> list[EventRecord]:
    """`function.finished` always, plus `function.failed` or `function.cancelled`.

    Runs started by these system events emit nothing, so failure handlers cannot loop.
    """
    first = trigger_events[0] if trigger_events else {}
    if first.get("name") in _NO_ECHO:
        return []
    data: dict[str, Any] = {
        "function_id": f"{app_id}-{function_id}",
        "run_id": run_id,
        "event": first,
        "events": trigger_events,
        "_inngest": {"status": status},
    }
    if status == "completed":
        data["result"] = output
    else:
        data["error"] = error
    correlation = lookup(first, "data._inngest.correlation_id")
    if correlation:
        data["correlation_id"] = correlation
    out = [EventRecord(id=new_ulid(now_ms), name=FUNCTION_FINISHED, data=data, user={}, ts=now_ms)]
    if status == "failed":
        out.append(EventRecord(id=new_ulid(now_ms), name=FUNCTION_FAILED, data=data, user={}, ts=now_ms))
    elif status == "cancelled":
        out.append(EventRecord(id=new_ulid(now_ms), name=FUNCTION_CANCELLED, data=data, user={}, ts=now_ms))
    return out
