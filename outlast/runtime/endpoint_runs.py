"""Durable Endpoints: runs an HTTP request starts and runs itself (`inngest.endpoint`, inngest@4).

The request is the run's first attempt. `POST /v1/checkpoint` makes the run, already leased to
that request (`Store.start_held_run`: no worker calls the app while the request runs it), and
commits the steps the handler has run so far; `POST /v1/checkpoint/{run}/steps` commits more,
each under that lease, as a worker commits an attempt's ops (`core.ops.step_commit`):

- `RunComplete` ends the run: its output is the endpoint's HTTP response (`{status, headers,
  body, version}`), which `GET /v1/http/runs/{run}/output` answers with.
- The handler's own error (thrown outside any step) is a function-level error: retried, as
  any function's is, by calling the endpoint again, or the run fails.
- A step that failed and will be retried, a sleep, a wait, an invoke, parallel steps or a
  discovery request (the SDK's time budget ran out) end the request's attempt: the run is
  suspended and goes on in the background. The SDK answers its caller with a redirect to the
  output URL; a worker calls the endpoint again when the run is due (`drivers.endpoint`).

The endpoint's app is its domain and its function is the endpoint (Inngest's ids: the SDK's
`fn`, else "METHOD /path"); both are stored the first time a request checkpoints, as a sync
would, so runs show in the dashboard, the CLI and the API as any run does.

If the request dies without ending its attempt, its lease expires (`http_request_timeout_ms`
after its last checkpoint) and the run is resumed as any abandoned attempt is: through the
endpoint. The lease token is made from the run id and the server's secret (`lease_token`), so
the request's checkpoints may reach any server process on the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from dataclasses import replace
from typing import TypeGuard
from weakref import WeakKeyDictionary

from outlast.core.config import FunctionConfig, Runtime
from outlast.core.models import FINAL_STATUSES, RunPlan, StepWrite, Suspend, SyncedApp
from outlast.core.ops import (
    FunctionError,
    Lease,
    RunComplete,
    StepAttemptFailed,
    StepFailed,
    StepOp,
    StepPlanned,
    outcome_commit,
    step_commit,
)
from outlast.protocol.endpoint import EndpointRequest, NewEndpointRun
from outlast.protocol.reply import Discovery
from outlast.runtime.checkpoints import CheckpointError, run_state
from outlast.runtime.engine import Engine
from outlast.runtime.executor import op_rules

OWNER = "endpoint"
Op = StepOp | RunComplete | StepPlanned | Discovery
#: the step id the SDK checkpoints the handler's own error under (`hashId("complete")`)
HANDLER_ERROR_KEY = hashlib.sha1(b"complete").hexdigest()
UNSAID = "the endpoint's handler threw an error (the SDK sent no message; its log has it)"
_registering: WeakKeyDictionary[Engine, asyncio.Lock] = WeakKeyDictionary()


def _hold_ms(engine: Engine) -> int:
    """How long a request holds its run between checkpoints: as long as Outlast waits for any
    call to an app (`http_request_timeout_ms`)."""
    return engine.settings.http_request_timeout_ms


def run_token(run_id: str, secret: str) -> str:
    """The token that lets a caller read a run's output (`/v1/http/runs/{run}/output?token=`)."""
    return hmac.new(secret.encode(), f"endpoint-output:{run_id}".encode(), hashlib.sha256).hexdigest()


def lease_token(run_id: str, secret: str) -> str:
    """The lease an endpoint's request holds its run under: made from the run id, so any server
    process sharing the store (and the secret) commits its checkpoints; a worker that took the
    run over holds another token, and the request's late checkpoints are refused as stale."""
    return hmac.new(secret.encode(), f"endpoint-lease:{run_id}".encode(), hashlib.sha256).hexdigest()[:32]


def token_matches(run_id: str, token: str | None, secret: str) -> bool:
    return bool(token) and hmac.compare_digest(run_token(run_id, secret), str(token))


async def endpoint_function(engine: Engine, request: EndpointRequest, *, retries: int) -> FunctionConfig:
    """The endpoint's function, stored (with its app) when it is new or its retries changed.
    Raises `CheckpointError` (409) when the app id is another kind of app's."""
    config = FunctionConfig(
        app_id=request.app_id,
        id=request.function_id,
        name=request.function_name,
        triggers=(),
        retries=retries,
        runtime=Runtime(kind="endpoint", url=request.url),
    )
    async with _registering.setdefault(engine, asyncio.Lock()):
        known = engine.function(config.app_id, config.id)
        if known is not None and known.retries == retries and known.runtime.kind == "endpoint":
            return known
        await engine.refresh_registry(force=True)  # another process may have added endpoints
        others = [f.config for f in engine.registry.apps().get(config.app_id, []) if f.id != config.id]
        if config.app_id in engine.sources or any(f.runtime.kind != "endpoint" for f in others):
            raise CheckpointError(
                409, f"app id {config.app_id!r} (the endpoint's host) is taken by an app that is not Durable Endpoints"
            )
        # stored as a sync stores an app (never pruned), with the app's other endpoints kept
        app = SyncedApp(id=config.app_id, url=request.domain, sdk="js", framework="durable-endpoint")
        await engine.store.sync_app(app, [*others, config], engine.clock.now_ms())
        await engine.refresh_registry(force=True)
    return config


async def start(engine: Engine, new: NewEndpointRun, *, secret: str) -> Lease:
    """Make the endpoint's run, held by its request, and commit the ops sent with it. Raises
    `CheckpointError` (409 when the run exists, 403 when its function is paused) and
    `InvalidEventError` (the request's event cannot be stored: too large, say)."""
    (record,) = engine.validate([new.event], allow_system=True)  # before anything is stored
    function = await endpoint_function(engine, new.request, retries=new.retries)
    now = engine.clock.now_ms()
    plan = RunPlan(
        run_id=new.run_id,
        app_id=function.app_id,
        function_id=function.id,
        event_ids=[record.id],
        created_at=now,
        due_at=now + _hold_ms(engine),
    )
    token = lease_token(new.run_id, secret)
    item = await engine.store.start_held_run(
        plan, record, lease_token=token, owner=OWNER, until_ms=now + _hold_ms(engine), now_ms=now
    )
    if item is None:
        run = await engine.reads.get_run(new.run_id)
        if run is not None and run.status == "skipped":
            raise CheckpointError(403, f"function {function.id!r} of app {function.app_id!r} is paused")
        raise CheckpointError(409, f"run {new.run_id} already exists")
    lease = Lease(item_id=item, token=token)
    if new.ops:
        await commit_ops(engine, new.run_id, new.ops, lease=lease)
    return lease


async def checkpoint_steps(engine: Engine, run_id: str, ops: list[Op], *, secret: str) -> None:
    """Commit ops the endpoint's request checkpointed for its run (see the module's docstring)."""
    jobs = await engine.reads.run_jobs(run_id)
    item = next((job for job in jobs if job.kind == "run"), None)
    if item is None:
        run = await engine.reads.get_run(run_id)
        if run is None:
            raise CheckpointError(404, f"no run {run_id!r}")
        raise CheckpointError(409, f"run {run_id} has ended ({run.status})")
    await commit_ops(engine, run_id, ops, lease=Lease(item_id=item.id, token=lease_token(run_id, secret)))


async def commit_ops(engine: Engine, run_id: str, ops: list[Op], *, lease: Lease) -> None:
    """One commit under the request's lease: the step results, then the run's end (RunComplete)
    or, when anything goes on in the background, the end of the request's attempt."""
    run = await engine.reads.get_run(run_id)
    if run is None:
        raise CheckpointError(404, f"no run {run_id!r}")
    if run.status in FINAL_STATUSES:
        raise CheckpointError(409, f"run {run_id} has ended ({run.status})")
    function = engine.function(run.app_id, run.function_id)
    if function is None:
        raise CheckpointError(409, f"function {run.function_id!r} of app {run.app_id!r} is no longer known")
    state, now, rules = run_state(run), engine.clock.now_ms(), op_rules(engine, function)
    steps = [op for op in ops if _is_step(op)]
    commit = step_commit(state, steps, lease=lease, now=now, rules=rules)
    ending = _ending(ops)
    if ending is not None:
        commit.outcome = outcome_commit(state, ending, lease=lease, now=now, rules=rules).outcome
    elif _goes_on_later(ops, commit.steps):
        deadlines = [w.deadline for w in commit.steps if w.deadline is not None]
        deadlines += [m.deadline for m in state.memo.values() if not m.final and m.deadline is not None]
        commit.outcome = Suspend(due_at=min(deadlines, default=now))
    else:
        await engine.store.extend_leases(OWNER, {lease.item_id: lease.token}, now + _hold_ms(engine))
    result = await engine.commit(commit)
    if not result.ok:
        raise CheckpointError(409, f"run {run_id}: its endpoint request no longer holds it ({result.reason or 'lost'})")
    if commit.outcome is not None:
        engine.wake()


def _is_step(op: Op) -> TypeGuard[StepOp]:
    if isinstance(op, StepAttemptFailed | StepFailed):
        return op.key != HANDLER_ERROR_KEY
    return not isinstance(op, RunComplete | StepPlanned | Discovery)


def _ending(ops: list[Op]) -> RunComplete | FunctionError | None:
    """How the request's attempt ends the run: it returned (RunComplete), or the handler itself
    threw (the SDK checkpoints that as a step error of `HANDLER_ERROR_KEY`): a function-level
    error, retried (a discovery call through the endpoint) or final as any function's is."""
    for op in ops:
        if isinstance(op, RunComplete):
            return op
    for op in ops:
        if isinstance(op, StepAttemptFailed | StepFailed) and op.key == HANDLER_ERROR_KEY:
            # inngest@4 sends the Error as JSON.stringify makes it: `{}`, without its message
            blank = not op.error.message and op.error.sent in (None, {})
            return FunctionError(error=replace(op.error, message=UNSAID, sent=None) if blank else op.error)
    return None


def _goes_on_later(ops: list[Op], written: list[StepWrite]) -> bool:
    """Whether the request's attempt ends here: the SDK switched the run to the background."""
    if any(isinstance(op, StepPlanned | Discovery) for op in ops):
        return True
    return any(w.status not in ("completed", "failed") for w in written)


__all__ = [
    "checkpoint_steps",
    "commit_ops",
    "endpoint_function",
    "lease_token",
    "run_token",
    "start",
    "token_matches",
]
