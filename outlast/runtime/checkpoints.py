"""Checkpoints an SDK posts on its own while it runs a call: inngest@4's async checkpointing.

A call request carries `ctx.qi_id`, which names the dispatch: the queue item and the lease it
was made under (`<item id>.<lease token>`). The SDK then runs the function's steps one after
another in that one request and posts each result to `/v1/checkpoint/{run}/async` with that
`qi_id`, so a run of N steps that never suspends costs one request instead of N + 1.

A checkpoint is committed under that lease, as the attempt's own step results are: exactly what
`step_commit` makes of the same ops, so a run's memo means the same whichever way its steps
arrived. A dispatch whose lease is gone (the attempt ended, timed out or was taken over, or the
run ended) is stale: nothing is written, and the SDK is told so (409) and stops. Only step
results (and `defer()`'s ops, which ride along with them) are taken this way; anything else is
refused (400), and the SDK falls back to sending its steps in the call's response.

The checkpoint may reach any server process on the database, not only the one driving the
attempt: that one reads the run's steps from the store before its next call after a call that
named the dispatch (`Attempt.refresh`). A server that has not yet seen the function (synced
through another process) looks again before refusing.
"""

from __future__ import annotations

from outlast.core.defers import DeferAbort, DeferAdd
from outlast.core.models import Run, RunState
from outlast.core.ops import StepAttemptFailed, StepFailed, StepRun, step_commit
from outlast.protocol.checkpoint import CheckpointRequest
from outlast.runtime.engine import Engine
from outlast.runtime.executor import memo_of, op_rules

#: what a checkpoint may carry: step results (a sleep, a wait or an invoke ends the call instead),
#: and the `defer()` ops the SDK ships with them
CHECKPOINTABLE = (StepRun, StepAttemptFailed, StepFailed, DeferAdd, DeferAbort)
ACTIVE = ("queued", "running")


class CheckpointError(Exception):
    """A checkpoint refused; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def checkpoint(engine: Engine, request: CheckpointRequest) -> int:
    """Commit step results an SDK checkpointed under the dispatch its call named; return how
    many step rows were written. Raises `CheckpointError` (400 bad, 404 no such run, 409 stale)."""
    run_id, lease, ops = request.run_id, request.dispatch, request.ops
    if refused := [op for op in ops if not isinstance(op, CHECKPOINTABLE)]:
        raise CheckpointError(400, f"only step results can be checkpointed here, not {type(refused[0]).__name__}")
    run = await engine.reads.get_run(run_id)
    if run is None:
        raise CheckpointError(404, f"no run {run_id!r}")
    if run.status not in ACTIVE:
        raise CheckpointError(409, f"run {run_id} has ended ({run.status}): stale dispatch")
    function = engine.function(run.app_id, run.function_id)
    if function is None:  # synced through another server process since this one last looked
        await engine.refresh_registry()
        function = engine.function(run.app_id, run.function_id)
    if function is None:
        raise CheckpointError(409, f"function {run.function_id!r} of app {run.app_id!r} is no longer served")
    state = run_state(run)
    commit = step_commit(state, ops, lease=lease, now=engine.clock.now_ms(), rules=op_rules(engine, function))
    result = await engine.commit(commit)
    if not result.ok:
        raise CheckpointError(409, f"stale dispatch for run {run_id}: its lease is gone ({result.reason or 'lost'})")
    return len(commit.steps)


def run_state(run: Run) -> RunState:
    """The run as an attempt in progress sees it (its memo from the stored steps)."""
    return RunState(
        run_id=run.id,
        app_id=run.app_id,
        function_id=run.function_id,
        status=run.status,
        events=[],
        memo=memo_of(run.steps),
        attempt=0,
        created_at=run.created_at,
        started_at=run.started_at,
    )


__all__ = ["CheckpointError", "checkpoint", "run_state"]
