"""Rerunning a run: a new run of the same function from the same events, either from the start
or from one of its steps. From a step, the new run keeps the memo of the steps before it; the
step itself runs again, or, given an edited output, is completed with it and the rest runs.

A rerun is an explicit act, so the trigger's idempotency key, rate limit, debounce, batching,
singleton and throttle do not apply to it; concurrency limits, cancel rules and timeouts do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from outlast.core import jsonutil
from outlast.core.models import ACTIVE_STATUSES, FINAL_STEP_STATUSES, Run, StepRecord, StepWrite
from outlast.core.planner import plan_run
from outlast.errors import RerunError

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: `output=UNSET`: the step the rerun starts from runs again
UNSET: Any = _Unset()


async def rerun(engine: Engine, run_id: str, *, from_step: str | None = None, output: Any = UNSET) -> str:
    """Start a rerun of `run_id` (which must have ended) and return the new run's id.

    `from_step` names a step by its id (`charge`, `charge:1`) or its stored key; `output` (any
    JSON value) completes that step with this output instead of running it again.
    """
    run = await engine.store.get_run(run_id)
    if run is None:
        raise RerunError(f"no run {run_id!r}")
    if run.status in ACTIVE_STATUSES:
        raise RerunError(f"run {run_id} is {run.status}; cancel it or wait for it to end before rerunning it")
    await engine.refresh_registry()
    fn = engine.registry.get(run.app_id, run.function_id)
    if fn is None:
        raise RerunError(
            f"function {run.function_id!r} of app {run.app_id!r} is not served by any live worker "
            "or synced app, so its runs cannot be rerun"
        )
    events = await engine.store.get_events(run.event_ids)
    if not events:
        raise RerunError(f"run {run_id}: its trigger events are no longer stored")
    now = engine.clock.now_ms()
    plan = plan_run(fn, events[0], events[0].to_dict(), now)
    plan.event_ids = [e.id for e in events]
    plan.due_at = now
    plan.idempotency_key = plan.rate_limit = plan.debounce = plan.batch = plan.singleton = plan.throttle = None
    keep: list[str] = []
    edited: StepWrite | None = None
    key: str | None = None
    if from_step is not None:
        index = _step_index(run, from_step)
        step = run.steps[index]
        key = step.key
        keep = [s.key for s in run.steps[:index] if s.status in FINAL_STEP_STATUSES]
        if output is not UNSET:
            edited = _edited(step, output, now, engine.settings.max_step_output_bytes)
    await engine.store.rerun(plan, origin_run_id=run.id, keep_keys=keep, edited=edited, from_step_key=key, now_ms=now)
    engine.wake()
    return plan.run_id


def _step_index(run: Run, wanted: str) -> int:
    for i, step in enumerate(run.steps):
        if wanted in (step.id, step.key):
            return i
    known = ", ".join(repr(s.id) for s in run.steps) or "none"
    raise RerunError(f"run {run.id} has no step {wanted!r} (its steps: {known})")


def _edited(step: StepRecord, output: Any, now: int, max_bytes: int) -> StepWrite:
    try:
        value, text = jsonutil.roundtrip(output)
    except jsonutil.NotJSONError as exc:
        raise RerunError(f"the output for step {step.id!r} is not JSON: {exc}") from None
    if len(text) > max_bytes:
        raise RerunError(f"the output for step {step.id!r} is {len(text)} bytes, the limit is {max_bytes}")
    return StepWrite(
        key=step.key,
        step_id=step.id,
        kind=step.kind,
        status="completed",
        attempts=1,
        started_at=now,
        ended_at=now,
        output=value,
        detail={**(step.detail or {}), "edited": True},
    )
