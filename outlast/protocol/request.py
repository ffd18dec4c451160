"""Call requests (server -> app): the body an SDK receives when a run's function is called.

    {"event", "events", "steps": {<hashed id>: <memo>}, "ctx": {...}, "version", "use_api"}

Memo values take the shape each SDK expects per step kind: a step's output `{"data": x}`, a
final error `{"error": {...}}`, a finished sleep or a timed-out wait `null`, a matched wait the
bare event, an invoke `{"data": result}` or `{"error": ...}`. Times and attempts are integers
(Python's models are strict). The body is canonical JSON (JCS) so its signature verifies in
every SDK.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from outlast.core.defers import is_defer, sdk_defers
from outlast.core.models import FINAL_STEP_STATUSES, EventRecord, MemoEntry, StepRecord
from outlast.protocol.jcs import canonical

#: Inngest's request version: steps are `{"data"}`/`{"error"}` wrapped, StepRun is not
REQUEST_VERSION = 1
#: the step id of a discovery call (no step targeted)
DISCOVERY = "step"
#: past this many bytes of events and memo, the SDK is told to fetch them (`use_api`)
MAX_INLINE_STATE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    run_id: str
    function_slug: str
    attempt: int
    max_attempts: int
    #: hashed ids of finished steps in the order they finished
    stack: list[str] = field(default_factory=list)
    disable_immediate_execution: bool = False
    step_id: str = DISCOVERY
    #: names the dispatch (queue item and lease) so the SDK may checkpoint steps under it
    #: (inngest@4's async checkpointing, `/v1/checkpoint/{run}/async`); "" for none
    queue_item_id: str = ""


def event_json(event: EventRecord) -> dict[str, Any]:
    """An event as SDKs read it (`user` always an object, `ts` an integer)."""
    return {
        "id": event.public_id(),
        "name": event.name,
        "data": event.data,
        "user": event.user or {},
        "ts": int(event.ts),
    }


def memo_value(entry: MemoEntry | StepRecord) -> Any:
    """A finished step's memo in the SDKs' shape; its error if it failed for good."""
    if entry.status == "failed":
        return {"error": _error_json(entry.error)}
    if entry.kind in ("sleep", "wait_for_event"):
        return entry.output  # None, or the matched event (not wrapped)
    return {"data": entry.output}


def memo_map(entries: Iterable[MemoEntry | StepRecord]) -> dict[str, Any]:
    """The `steps` map: every finished step, keyed by its hashed id."""
    return {e.key: memo_value(e) for e in entries if e.status in FINAL_STEP_STATUSES and not is_defer(e.kind)}


def _error_json(error: Mapping[str, Any] | None) -> dict[str, Any]:
    error = error or {}
    out = {"name": str(error.get("name") or "Error"), "message": str(error.get("message") or "")}
    if error.get("stack"):
        out["stack"] = str(error["stack"])
    return out


def call_body(
    *,
    events: list[EventRecord],
    memo: Iterable[MemoEntry],
    ctx: CallContext,
    max_inline_bytes: int = MAX_INLINE_STATE_BYTES,
) -> bytes:
    """The canonical JSON body of a call request. When events and memo together exceed
    `max_inline_bytes`, they are left out and `use_api` tells the SDK to fetch them."""
    event_list = [event_json(e) for e in events]
    memo = list(memo)
    steps, defers = memo_map(memo), sdk_defers(memo)
    body = _body(event_list, steps, ctx, use_api=False, defers=defers)
    if len(body) > max_inline_bytes:
        body = _body([], {}, ctx, use_api=True, first=event_list[0] if event_list else None, defers=defers)
    return body


def _body(
    events: list[dict[str, Any]],
    steps: dict[str, Any],
    ctx: CallContext,
    *,
    use_api: bool,
    first: dict[str, Any] | None = None,
    defers: dict[str, dict[str, bool]] | None = None,
) -> bytes:
    event = first if first is not None else (events[0] if events else {"name": "", "data": {}, "user": {}, "ts": 0})
    return canonical(
        {
            "event": event,
            "events": events,
            "steps": steps,
            "defers": defers or {},
            "version": REQUEST_VERSION,
            "use_api": use_api,
            "ctx": {
                "fn_id": ctx.function_slug,
                "run_id": ctx.run_id,
                "env": "",
                "step_id": ctx.step_id,
                "attempt": int(ctx.attempt),
                "max_attempts": int(ctx.max_attempts),
                "stack": {"stack": list(ctx.stack), "current": len(ctx.stack)},
                "disable_immediate_execution": ctx.disable_immediate_execution,
                "qi_id": ctx.queue_item_id,
                "use_api": use_api,
            },
        }
    )
