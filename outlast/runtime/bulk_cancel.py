"""Bulk cancellation: cancel the active runs of one function created in a time window, optionally
only those whose trigger event matches an `if` expression (CEL, with `event` bound to the run's
first trigger event). Inngest's `POST /v1/cancellations` and `app.cancel_runs` both run this.

Each run is cancelled in its own transaction (it ends cancelled with its waits, items and system
events, or is left as it was). One call cancels at most `MAX_RUNS_PER_CALL` runs and reads at most
`MAX_SCANNED_PER_CALL` candidates, in pages, so its work is bounded; `has_more` says whether the
limit stopped it (calling again continues: runs already cancelled are not active any more).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from outlast.core.expressions import EVENT, Expression, ExpressionError, compile_expression
from outlast.core.ids import new_ulid
from outlast.core.registry import CompiledFunction
from outlast.errors import OutlastError
from outlast.runtime.replay import Time, epoch_ms

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

MAX_RUNS_PER_CALL = 10_000
#: active runs of the window a call looks at, matching its `if` or not
MAX_SCANNED_PER_CALL = 100_000
PAGE_SIZE = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class BulkCancellation:
    function: CompiledFunction
    started_after: int | None
    started_before: int
    condition: Expression | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cancelled:
    id: str
    cancelled: int
    has_more: bool


async def cancel_matching(engine: Engine, request: BulkCancellation, now_ms: int) -> Cancelled:
    """Cancel the matching runs (up to the limits); how many, and whether more may remain."""
    cancellation_id = new_ulid(now_ms)
    reason = f"cancelled by bulk cancellation {cancellation_id}"
    fn = request.function
    cancelled, scanned, after, has_more = 0, 0, None, False
    while not has_more:
        page = await engine.reads.active_runs_with_triggers(
            app_id=fn.app_id,
            function_id=fn.id,
            since=request.started_after,
            until=request.started_before,
            after=after,
            limit=PAGE_SIZE,
        )
        matching = [
            run_id
            for run_id, trigger in page
            if request.condition is None
            or request.condition.matches({"event": trigger.to_dict() if trigger is not None else {}})
        ]
        room = MAX_RUNS_PER_CALL - cancelled
        has_more = len(matching) > room
        after = matching[room - 1] if has_more else (page[-1][0] if page else after)
        # one transaction per run, issued together so the store can group-commit them
        done = await asyncio.gather(*(engine.store.cancel_run(run_id, now_ms, reason) for run_id in matching[:room]))
        cancelled += sum(done)
        scanned += len(page)
        if len(page) < PAGE_SIZE:
            break
        has_more = has_more or scanned >= MAX_SCANNED_PER_CALL
    if cancelled:
        engine.wake()
    return Cancelled(id=cancellation_id, cancelled=cancelled, has_more=has_more)


async def cancel_runs(
    engine: Engine, *, app_id: str, function_id: str, if_: str | None, since: Time, until: Time
) -> int:
    """`app.cancel_runs`: cancel every active run of the function created in [since, until]
    (until defaults to now) whose trigger event matches `if_`; how many were cancelled. Bad
    arguments raise OutlastError naming them, before anything is cancelled."""
    await engine.refresh_registry()
    function = engine.registry.get(app_id, function_id)
    if function is None:
        raise OutlastError(f"function_id: app {app_id!r} has no function {function_id!r}")
    condition = None
    if if_ is not None:
        try:
            condition = compile_expression(if_, variables=EVENT, result="bool")
        except ExpressionError as exc:
            raise OutlastError(f"if_: invalid expression: {exc}") from None
    now = engine.clock.now_ms()
    before = epoch_ms(until, "until")
    request = BulkCancellation(
        function=function,
        started_after=epoch_ms(since, "since"),
        started_before=now + 1 if before is None else before,  # runs created this very ms too
        condition=condition,
    )
    total = 0
    while True:
        done = await cancel_matching(engine, request, engine.clock.now_ms())
        total += done.cancelled
        if not done.has_more:
            return total
