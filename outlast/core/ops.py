"""The op vocabulary drivers report in, and its one translation into a `Commit`.

A driver (in-process or over HTTP) runs the user's code and says what happened in ops: a step
returned (`StepRun`), failed once (`StepAttemptFailed`) or for good (`StepFailed`), asked to sleep, to
wait for an event, to invoke a function or to send events; the attempt then ends with
`RunComplete`, `FunctionError` or `Suspended`. The names are Inngest's opcodes, so the HTTP
driver maps them one to one, but for `StepAttemptFailed` (opcode `StepError`: that name is the
public exception's, `outlast.StepError`).

`step_commit` and `outcome_commit` are pure: the run's state, the ops, the time and the rules
in; the rows to write out. Retry decisions, limits (sleeps up to a year, output sizes, steps
per run), wait indexing and the invoke protocol live here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from outlast.core import jsonutil
from outlast.core.config import YEAR_MS
from outlast.core.defers import DeferAbort, DeferAdd, abort_write, defer_write
from outlast.core.events import (
    FUNCTION_CANCELLED,
    FUNCTION_FAILED,
    FUNCTION_FINISHED,
    FUNCTION_INVOKED,
    SYSTEM_PREFIX,
    name_problem,
    text_problem,
)
from outlast.core.expressions import EVENT_AND_ASYNC, ExpressionError, compile_expression
from outlast.core.ids import new_ulid
from outlast.core.models import (
    RETRYING,
    Commit,
    EventRecord,
    Finish,
    LogLine,
    MemoEntry,
    RunState,
    SignalWait,
    StepWrite,
    Suspend,
    WaitSpec,
)
from outlast.core.planner import wait_spec
from outlast.core.realtime import MessageRecord
from outlast.core.retry import BackoffRule, ErrorInfo, RetryPolicy, next_try
from outlast.core.signals import ON_CONFLICT, signal_problem

MAX_SLEEP_MS = YEAR_MS
MAX_LOOKBACK_MS = 7 * 24 * 3600 * 1000
MAX_WAITS = 10
WAITABLE_SYSTEM_EVENTS = (FUNCTION_FAILED, FUNCTION_FINISHED, FUNCTION_CANCELLED)
INVOKE_TIMEOUT_ERROR = {
    "name": "InngestInvokeTimeoutError",
    "message": "Timed out waiting for invoked function to complete",
}


# -- step ops ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRun:
    """A step's body returned `output` (already in JSON form)."""

    key: str
    step_id: str
    output: Any
    started_at: int | None = None
    kind: str = "run"
    #: the output's JSON size in bytes, when the driver knows it (spares encoding it again)
    output_bytes: int | None = None
    #: the step's own policy as the trace shows it (`StepOptions`), if it has one
    policy: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepAttemptFailed:
    """One attempt of a step failed; the retry decision says whether it runs again."""

    key: str
    step_id: str
    error: ErrorInfo
    started_at: int | None = None
    #: the step's own policy (`StepOptions`), over the function's
    max_attempts: int | None = None
    backoff: BackoffRule | None = None
    policy: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepFailed:
    """A step failed for good (its code or SDK decided so): the error is memoized."""

    key: str
    step_id: str
    error: ErrorInfo
    started_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StepPlanned:
    """A step found but not run (parallel steps over HTTP): the driver runs it next. Never committed."""

    key: str
    step_id: str
    #: its group is in race mode (`parallelMode: "race"`): discover again after each of its steps
    race: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Sleep:
    key: str
    step_id: str
    until_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForEvent:
    """Wait for `event` matching `expression` (over `event`, the trigger, and `async`, the
    incoming event; None matches any) until `expires_at`; the step's value is the event or None."""

    key: str
    step_id: str
    event: str
    expression: str | None
    expires_at: int
    #: resolve at once with the earliest match received this long before the wait (≤ 7 days)
    lookback_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForMany:
    """Wait for several events at once: `mode` "any" ends at the first match of any part (the
    step's value is that event), "all" when each part has matched (a list, in part order, with
    None for parts without a match at the timeout). `parts` are (event name, expression)."""

    key: str
    step_id: str
    mode: str
    parts: tuple[tuple[str, str | None], ...]
    expires_at: int
    lookback_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForSignal:
    """Wait until `expires_at` for the signal `signal` (one run waits on a name at a time); the
    step's value is the signal's data, or None at the timeout."""

    key: str
    step_id: str
    signal: str
    expires_at: int
    on_conflict: str = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class InvokeFunction:
    """Run the function `function_slug` (`<app>-<fn>`) with `data` as a child run and wait for it."""

    key: str
    step_id: str
    function_slug: str
    data: dict[str, Any]
    #: None: no timeout (the wait lasts a year, as in Inngest)
    expires_at: int | None = None
    user: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendEvent:
    """Send validated events exactly once for the run; the step's value is their ids."""

    key: str
    step_id: str
    events: list[EventRecord]


@dataclass(frozen=True, slots=True, kw_only=True)
class Publish:
    """Publish a realtime message exactly once for the run (its channel and topic already checked)."""

    key: str
    step_id: str
    channel: str
    topic: str
    data: Any
    data_bytes: int


StepOp = (
    StepRun
    | StepAttemptFailed
    | StepFailed
    | Sleep
    | WaitForEvent
    | WaitForMany
    | WaitForSignal
    | InvokeFunction
    | SendEvent
    | Publish
    | DeferAdd
    | DeferAbort
)


# -- attempt outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class RunComplete:
    output: Any
    #: the output's JSON size in bytes, when the driver knows it
    output_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionError:
    """The function itself failed (outside any step); the attempt is retried by policy."""

    error: ErrorInfo


@dataclass(frozen=True, slots=True)
class Suspended:
    """The attempt yields: every step it reached is committed, pending or due to retry."""


Outcome = RunComplete | FunctionError | Suspended


# -- translation ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class OpRules:
    """What the translation needs besides the run: the function's retry policy and the limits."""

    policy: RetryPolicy
    max_output_bytes: int = 4 * 1024 * 1024
    max_steps_per_run: int = 1000
    #: whether a function slug can be invoked (some live worker or synced app serves it)
    known_function: Callable[[str], bool] = lambda _slug: True


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    item_id: str
    token: str


def step_commit(
    run: RunState, ops: Sequence[StepOp], *, lease: Lease, now: int, rules: OpRules, logs: Sequence[LogLine] = ()
) -> Commit:
    """The commit that records step ops (a checkpoint: the attempt goes on)."""
    commit = Commit(item_id=lease.item_id, lease_token=lease.token, run_id=run.run_id, now_ms=now, logs=list(logs))
    new_keys = sum(1 for op in ops if op.key not in run.memo)
    over_limit = len(run.memo) + new_keys > rules.max_steps_per_run
    for op in ops:
        if over_limit and op.key not in run.memo:
            op = _step_limit(op, rules)
        _translate(run, op, commit, now, rules)
    return commit


def outcome_commit(
    run: RunState,
    outcome: Outcome,
    *,
    lease: Lease,
    now: int,
    rules: OpRules,
    suspended_in_attempt: bool = False,
    attempts_reset: bool = False,
    logs: Sequence[LogLine] = (),
) -> Commit:
    """The commit that ends an attempt.

    `suspended_in_attempt`: a step of this attempt is pending or due to retry. The attempt then
    ends as a suspension whatever the handler did after its step suspended it (a bare `except:`
    can swallow the signal, but cannot finish the run early).
    `attempts_reset`: the attempt made progress, so `run.attempt` went back to 0 (stored so).
    """
    commit = Commit(item_id=lease.item_id, lease_token=lease.token, run_id=run.run_id, now_ms=now, logs=list(logs))
    if suspended_in_attempt or isinstance(outcome, Suspended):
        commit.outcome = Suspend(due_at=wake_time(run.memo.values(), now), attempt=0 if attempts_reset else None)
    elif isinstance(outcome, RunComplete):
        commit.outcome = _complete(run, outcome, rules)
    else:
        failed = run.attempt + 1
        due = next_try(outcome.error, failed_attempts=failed, policy=rules.policy, now_ms=now)
        commit.outcome = (
            Finish(
                status="failed",
                error=outcome.error.to_json(),
                event_error=outcome.error.event_json(),
                trigger_events=run.events,
            )
            if due is None
            else Suspend(due_at=due, attempt=failed, error=outcome.error.to_json())
        )
    return commit


def wake_time(memo: Any, now: int) -> int:
    """When a suspended run can next make progress: its earliest pending deadline or retry time."""
    deadlines = [m.deadline for m in memo if not m.final and m.deadline is not None]
    return min(deadlines, default=now)


def _complete(run: RunState, outcome: RunComplete, rules: OpRules) -> Finish:
    output = outcome.output
    try:
        size = outcome.output_bytes if outcome.output_bytes is not None else _json_size(output)
    except jsonutil.NotJSONError as exc:
        return Finish(
            status="failed",
            trigger_events=run.events,
            error={"name": "OutputUnserializableError", "message": f"the function's return value: {exc}"},
        )
    if size > rules.max_output_bytes:
        return Finish(
            status="failed",
            trigger_events=run.events,
            error={
                "name": "PayloadTooLargeError",
                "message": f"the function's return value is {size} bytes, the limit is {rules.max_output_bytes} bytes",
            },
        )
    return Finish(status="completed", output=output, trigger_events=run.events)


def _translate(run: RunState, op: StepOp, commit: Commit, now: int, rules: OpRules) -> None:
    previous = run.memo.get(op.key)
    if previous is not None and previous.final:
        return  # a memo row is written once; a late duplicate changes nothing
    if (problem := text_problem(op.step_id)) is not None:  # PostgreSQL cannot store it; no backend should
        printable = op.step_id.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()
        error = ErrorInfo(name="StepUsageError", message=f"step id {op.step_id!r}: {problem}", no_retry=True)
        commit.steps.append(_failed(op.key, printable, "run", error, 1, now, now))
        return
    attempts = (previous.attempts if previous is not None and previous.status == RETRYING else 0) + 1
    started = _started(op, previous, now)
    if isinstance(op, StepRun):
        commit.steps.append(_step_run(op, attempts, started, now, rules))
    elif isinstance(op, StepAttemptFailed):
        due = next_try(op.error, failed_attempts=attempts, policy=_step_policy(op, rules.policy), now_ms=now)
        commit.steps.append(
            StepWrite(
                key=op.key,
                step_id=op.step_id,
                kind="run",
                attempts=attempts,
                started_at=started,
                status="failed" if due is None else RETRYING,
                deadline=due,
                ended_at=now if due is None else None,
                error=op.error.to_json(),
                detail=None if op.policy is None else {"policy": op.policy},
            )
        )
    elif isinstance(op, StepFailed):
        commit.steps.append(_failed(op.key, op.step_id, "run", op.error, attempts, started, now))
    elif isinstance(op, Sleep):
        _sleep(op, commit, now)
    elif isinstance(op, WaitForEvent):
        _wait(run, op, commit, now)
    elif isinstance(op, WaitForSignal):
        _wait_signal(op, commit, now)
    elif isinstance(op, WaitForMany):
        _wait_many(run, op, commit, now)
    elif isinstance(op, InvokeFunction):
        _invoke(run, op, commit, now, rules)
    elif isinstance(op, SendEvent):
        ids = [e.id for e in op.events]
        commit.steps.append(_done_at_once(op, "send_event", now, output=ids))
        commit.events.extend(op.events)
    else:
        _translate_rest(run, op, commit, now, rules)


def _translate_rest(run: RunState, op: StepOp, commit: Commit, now: int, rules: OpRules) -> None:
    if isinstance(op, Publish):
        _publish(run, op, commit, now, rules)
    elif isinstance(op, DeferAdd):
        commit.steps.append(defer_write(run.memo, op, commit.steps, now))
    elif isinstance(op, DeferAbort):
        commit.steps.append(abort_write(op, now))
    else:
        raise TypeError(f"not a step op that can be committed: {op!r}")


def _publish(run: RunState, op: Publish, commit: Commit, now: int, rules: OpRules) -> None:
    """The memo row and the message, in one commit: sent once per run, in step order."""
    if op.data_bytes > rules.max_output_bytes:
        message = f"published data is {op.data_bytes} bytes, the limit is {rules.max_output_bytes} bytes"
        error = ErrorInfo(name="PayloadTooLargeError", message=f"step {op.step_id!r}: {message}", no_retry=True)
        commit.steps.append(_failed(op.key, op.step_id, "publish", error, 1, now, now))
        return
    commit.steps.append(_done_at_once(op, "publish", now, detail={"channel": op.channel, "topic": op.topic}))
    commit.messages.append(MessageRecord(channel=op.channel, topic=op.topic, data=op.data, ts=now, run_id=run.run_id))


def _step_policy(op: StepAttemptFailed, policy: RetryPolicy) -> RetryPolicy:
    if op.max_attempts is not None:
        policy = replace(policy, max_attempts=op.max_attempts)
    if op.backoff is not None:
        policy = replace(policy, backoff=op.backoff)
    return policy


def _started(op: StepOp, previous: MemoEntry | None, now: int) -> int:
    explicit = getattr(op, "started_at", None)
    return (previous.started_at if previous is not None else None) or explicit or now


def _json_size(value: Any) -> int:
    return len(jsonutil.dumps(value).encode())


def _step_run(op: StepRun, attempts: int, started: int, now: int, rules: OpRules) -> StepWrite:
    size = op.output_bytes if op.output_bytes is not None else _json_size(op.output)
    if size > rules.max_output_bytes:
        limit = rules.max_output_bytes
        error = ErrorInfo(
            name="PayloadTooLargeError",
            no_retry=True,
            message=f"step {op.step_id!r} output is {size} bytes, the limit is {limit} bytes",
        )
        return _failed(op.key, op.step_id, op.kind, error, attempts, started, now)
    return StepWrite(
        key=op.key,
        step_id=op.step_id,
        kind=op.kind,
        status="completed",
        attempts=attempts,
        started_at=started,
        ended_at=now,
        output=op.output,
        detail=None if op.policy is None else {"policy": op.policy},
    )


def _done_at_once(
    op: StepOp, kind: str, now: int, *, output: Any = None, detail: dict[str, Any] | None = None
) -> StepWrite:
    """The row of a step that ends where it is reported (an event sent, a message published, a
    sleep or wait already over)."""
    return StepWrite(
        key=op.key,
        step_id=op.step_id,
        kind=kind,
        status="completed",
        attempts=1,
        started_at=now,
        ended_at=now,
        output=output,
        detail=detail,
    )


def _pending(
    op: StepOp,
    kind: str,
    status: str,
    now: int,
    *,
    deadline: int,
    detail: dict[str, Any],
    timeout_output: Any = None,
) -> StepWrite:
    """The row of a step that ends later: a sleep, a wait, an invoke (resolved by the store, or
    at `deadline` with `timeout_output`)."""
    return StepWrite(
        key=op.key,
        step_id=op.step_id,
        kind=kind,
        status=status,
        attempts=1,
        started_at=now,
        deadline=deadline,
        timeout_output=timeout_output,
        detail=detail,
    )


def _failed(key: str, step_id: str, kind: str, error: ErrorInfo, attempts: int, started: int, now: int) -> StepWrite:
    return StepWrite(
        key=key,
        step_id=step_id,
        kind=kind,
        status="failed",
        attempts=attempts,
        started_at=started,
        ended_at=now,
        error=error.to_json(),
    )


def _usage_error(op: StepOp, message: str, now: int, kind: str) -> StepWrite:
    error = ErrorInfo(name="StepUsageError", message=f"step {op.step_id!r}: {message}", no_retry=True)
    return _failed(op.key, op.step_id, kind, error, 1, now, now)


def _step_limit(op: StepOp, rules: OpRules) -> StepOp:
    error = ErrorInfo(
        name="StepUsageError",
        no_retry=True,
        message=f"the run would have more than {rules.max_steps_per_run} steps (max_steps_per_run)",
    )
    return StepFailed(key=op.key, step_id=op.step_id, error=error)


def _sleep(op: Sleep, commit: Commit, now: int) -> None:
    if op.until_ms - now > MAX_SLEEP_MS:
        commit.steps.append(_usage_error(op, "cannot sleep longer than one year", now, "sleep"))
    elif op.until_ms <= now:
        commit.steps.append(_done_at_once(op, "sleep", now))
    else:
        commit.steps.append(_pending(op, "sleep", "sleeping", now, deadline=op.until_ms, detail={"until": op.until_ms}))


def _wait(run: RunState, op: WaitForEvent, commit: Commit, now: int) -> None:
    problem = wait_problem(op.event, op.expression)
    if problem is None and op.expires_at - now > MAX_SLEEP_MS:
        problem = "a wait cannot last longer than one year"
    if problem is None:
        problem = lookback_problem(op.lookback_ms)
    if problem is not None:
        commit.steps.append(_usage_error(op, problem, now, "wait_for_event"))
        return
    if op.expires_at <= now and not op.lookback_ms:  # an empty timeout: expired already
        commit.steps.append(_done_at_once(op, "wait_for_event", now))
        return
    trigger = run.events[0].to_dict() if run.events else {}
    detail = {"event": op.event, "if": op.expression, "until": op.expires_at}
    commit.steps.append(_pending(op, "wait_for_event", "waiting", now, deadline=op.expires_at, detail=detail))
    commit.waits.append(
        wait_spec(
            kind="wait",
            event_name=op.event,
            expression=op.expression,
            trigger=trigger,
            expires_at=op.expires_at,
            step_key=op.key,
            lookback_ms=op.lookback_ms,
        )
    )


def _wait_many(run: RunState, op: WaitForMany, commit: Commit, now: int) -> None:
    """One step row for all the parts, and one wait row per part (kind "any", or "all:<i>"): the
    store resolves the step at the first match (any) or once each part matched (all), keeping
    the matches so far as the step's timeout output."""
    kind = f"wait_for_{op.mode}"
    problem = many_problem(op.mode, len(op.parts)) or lookback_problem(op.lookback_ms)
    problem = problem or next((p for e, x in op.parts if (p := wait_problem(e, x)) is not None), None)
    if problem is None and op.expires_at - now > MAX_SLEEP_MS:
        problem = "a wait cannot last longer than one year"
    if problem is not None:
        commit.steps.append(_usage_error(op, problem, now, kind))
        return
    commit.steps.append(
        _pending(
            op,
            kind,
            "waiting",
            now,
            deadline=max(op.expires_at, now),
            timeout_output=None if op.mode == "any" else [None] * len(op.parts),
            detail={"waits": [{"event": e, "if": x} for e, x in op.parts], "until": op.expires_at},
        )
    )
    trigger = run.events[0].to_dict() if run.events else {}
    for i, (event, expression) in enumerate(op.parts):
        commit.waits.append(
            wait_spec(
                kind="any" if op.mode == "any" else f"all:{i}",
                event_name=event,
                expression=expression,
                trigger=trigger,
                expires_at=max(op.expires_at, now),
                step_key=op.key,
                lookback_ms=op.lookback_ms,
            )
        )


def many_problem(mode: str, count: int) -> str | None:
    if mode not in ("any", "all"):
        return f"mode: expected 'any' or 'all', got {mode!r}"
    if not 1 <= count <= MAX_WAITS:
        return f"waits: expected 1 to {MAX_WAITS} WaitFor, got {count}"
    return None


def lookback_problem(lookback_ms: int | None) -> str | None:
    if lookback_ms is not None and not 0 <= lookback_ms <= MAX_LOOKBACK_MS:
        return "lookback: must be at most 7 days"
    return None


def _wait_signal(op: WaitForSignal, commit: Commit, now: int) -> None:
    """A signal wait: its step row pending until `expires_at`, and the name taken in the same commit
    (the store resolves the step at once from a held signal, or fails it on a conflict)."""
    problem = signal_problem(op.signal)
    if problem is None and op.on_conflict not in ON_CONFLICT:
        problem = f"on_conflict: expected 'fail' or 'replace', got {op.on_conflict!r}"
    if problem is None and op.expires_at - now > MAX_SLEEP_MS:
        problem = "a wait cannot last longer than one year"
    if problem is not None:
        commit.steps.append(_usage_error(op, problem, now, "wait_for_signal"))
        return
    detail = {"signal": op.signal, "until": op.expires_at}
    commit.steps.append(
        _pending(op, "wait_for_signal", "waiting", now, deadline=max(op.expires_at, now), detail=detail)
    )
    commit.signal_waits.append(
        SignalWait(
            signal=op.signal, step_key=op.key, expires_at=max(op.expires_at, now), replace=op.on_conflict == "replace"
        )
    )


def wait_problem(event: Any, expression: str | None) -> str | None:
    """Why a wait could never be resolved, or None when it can."""
    if not isinstance(event, str) or not event.strip():
        return "wait_for_event needs an event name"
    if (problem := name_problem(event, what="the event name")) is not None:
        return problem
    if event.lower().startswith(SYSTEM_PREFIX) and event not in WAITABLE_SYSTEM_EVENTS:
        return f"{event!r} is a reserved name that is never sent"
    if expression:
        try:
            compile_expression(expression, variables=EVENT_AND_ASYNC, result="bool")
        except ExpressionError as exc:
            return str(exc)
    return None


def _invoke(run: RunState, op: InvokeFunction, commit: Commit, now: int, rules: OpRules) -> None:
    expires = op.expires_at if op.expires_at is not None else now + MAX_SLEEP_MS
    if expires - now > MAX_SLEEP_MS:
        commit.steps.append(_usage_error(op, "an invoke timeout cannot be longer than one year", now, "invoke"))
        return
    if not rules.known_function(op.function_slug):
        error = ErrorInfo(
            name="FunctionNotFoundError",
            no_retry=True,
            message=f"cannot invoke {op.function_slug!r}: no live worker or synced app serves it",
        )
        commit.steps.append(_failed(op.key, op.step_id, "invoke", error, 1, now, now))
        return
    correlation = f"{run.run_id}.{op.key}"
    data = {
        **op.data,
        "_inngest": {
            "fn_id": op.function_slug,
            "correlation_id": correlation,
            "expire": expires,
            "source_app_id": run.app_id,
            "source_fn_id": run.function_id,
        },
    }
    commit.events.append(EventRecord(id=new_ulid(now), name=FUNCTION_INVOKED, data=data, user=op.user, ts=now))
    commit.steps.append(
        _pending(
            op,
            "invoke",
            "invoking",
            now,
            deadline=expires,
            timeout_output=INVOKE_TIMEOUT_ERROR,
            detail={"function": op.function_slug, "until": expires},
        )
    )
    commit.waits.append(
        WaitSpec(
            kind="invoke",
            event_name=FUNCTION_FINISHED,
            expression=None,
            match_field="data.correlation_id",
            match_value=jsonutil.dumps(correlation),
            expires_at=expires,
            step_key=op.key,
        )
    )
