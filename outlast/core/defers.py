"""`defer()` (inngest-js v4): a function run the parent asks for, started once the parent ends.

The SDK reports `DeferAdd` (the deferred function's slug and its input) and `DeferAbort` (the
defer's hashed id). Each becomes a memo row of the parent run, kind `defer` or `defer_abort`,
written once, with (and as atomically as) the steps of the response or checkpoint that carried
it. Neither is a step the SDK replays: they stay out of `steps` and the stack, and the request's
`defers` map tells the SDK which it already reported (and which it may still abort).

When the parent ends, however it ends (completed, failed or cancelled, as Inngest's finalizer),
the store ingests one `inngest/deferred.schedule` event per defer not aborted, in the
transaction that ends the run. The deferred function (`createDefer`) is triggered by that event
filtered on `data._inngest.fn_slug`; its data is the defer's input with the parent's linkage
under `_inngest`, as Inngest's `buildDeferEvents` makes it.

Like Inngest, a defer that cannot be kept (an input that is not a JSON object or is too large,
more than `MAX_DEFERS_PER_RUN` in a run) is refused without failing the parent: its row is
stored failed, with the reason, and schedules nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from outlast.core import jsonutil
from outlast.core.ids import new_ulid
from outlast.core.models import EventRecord, MemoEntry, StepWrite

DEFERRED_SCHEDULE = "inngest/deferred.schedule"
DEFER = "defer"
DEFER_ABORT = "defer_abort"
KINDS = (DEFER, DEFER_ABORT)
#: Inngest's MaxDefersPerRun and MaxDeferInputSize
MAX_DEFERS_PER_RUN = 20
MAX_DEFER_INPUT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class DeferAdd:
    """Start `function_slug` (`<app>-<fn>`) with `input` as its event data once this run ends."""

    key: str
    step_id: str
    function_slug: str
    input: Any
    #: the SDK's `meta` (session layers): kept with the defer; Outlast has no sessions to resolve
    meta: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeferAbort:
    """Drop the defer with hashed id `target`: nothing is started for it."""

    key: str
    step_id: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeferRow:
    """A stored defer row, as the run's end reads it."""

    key: str
    kind: str
    status: str
    output: Any


def defer_write(memo: dict[str, MemoEntry], op: DeferAdd, pending: Sequence[StepWrite], now: int) -> StepWrite:
    """The row a `DeferAdd` writes: completed (it will be scheduled), or failed with why not."""
    problem = _input_problem(op.input)
    if problem is None and not op.function_slug:
        problem = "no function slug (opts.fn_slug)"
    if problem is None and _count(memo.values(), pending) >= MAX_DEFERS_PER_RUN:
        problem = f"a run can defer at most {MAX_DEFERS_PER_RUN} functions"
    error = None if problem is None else {"name": "DeferRejectedError", "message": f"defer {op.step_id!r}: {problem}"}
    output = {"function": op.function_slug, "input": op.input}
    if op.meta is not None:
        output["meta"] = op.meta
    return StepWrite(
        key=op.key,
        step_id=op.step_id,
        kind=DEFER,
        status="completed" if problem is None else "failed",
        attempts=1,
        started_at=now,
        ended_at=now,
        output=output,
        error=error,
    )


def abort_write(op: DeferAbort, now: int) -> StepWrite:
    return StepWrite(
        key=op.key,
        step_id=op.step_id,
        kind=DEFER_ABORT,
        status="completed",
        attempts=1,
        started_at=now,
        ended_at=now,
        output={"target": op.target},
    )


def _input_problem(value: Any) -> str | None:
    if value is None:
        return None  # Inngest reads a missing input as {}
    if not isinstance(value, dict):
        return f"the input must be a JSON object, got {type(value).__name__}"
    size = len(jsonutil.dumps(value).encode())
    if size > MAX_DEFER_INPUT_BYTES:
        return f"the input is {size} bytes, the limit is {MAX_DEFER_INPUT_BYTES} bytes"
    return None


def _count(memo: Iterable[MemoEntry], pending: Sequence[StepWrite]) -> int:
    stored = sum(1 for m in memo if m.kind == DEFER and m.status == "completed")
    return stored + sum(1 for w in pending if w.kind == DEFER and w.status == "completed")


def is_defer(kind: str) -> bool:
    return kind in KINDS


def is_defer_op(op: object) -> bool:
    return isinstance(op, DeferAdd | DeferAbort)


def sdk_defers(memo: Iterable[MemoEntry]) -> dict[str, dict[str, bool]]:
    """The request's `defers` map: each defer the server holds, and whether it can be aborted."""
    entries = list(memo)
    aborted = {_target(e.output) for e in entries if e.kind == DEFER_ABORT}
    return {e.key: {"abortable": e.status == "completed" and e.key not in aborted} for e in entries if e.kind == DEFER}


def _target(output: Any) -> str | None:
    return output.get("target") if isinstance(output, dict) else None


def schedule_events(
    rows: Sequence[DeferRow], *, app_id: str, function_id: str, run_id: str, now_ms: int
) -> list[EventRecord]:
    """The `inngest/deferred.schedule` events a run's end sends: one per kept, unaborted defer."""
    aborted = {_target(r.output) for r in rows if r.kind == DEFER_ABORT}
    events = []
    for row in rows:
        if row.kind != DEFER or row.status != "completed" or row.key in aborted or not isinstance(row.output, dict):
            continue
        data = dict(row.output.get("input") or {})
        data["_inngest"] = {
            "fn_slug": row.output.get("function"),
            "parent_app_id": app_id,
            "parent_fn_id": function_id,
            "parent_fn_slug": f"{app_id}-{function_id}",
            "parent_run_id": run_id,
        }
        events.append(EventRecord(id=new_ulid(now_ms), name=DEFERRED_SCHEDULE, data=data, user={}, ts=now_ms))
    return events
