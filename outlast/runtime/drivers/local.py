"""The local driver: a function's handler called in this process, checkpointed.

The handler runs straight through. A step found in the memo returns its stored value; a new
step runs its body and the handler continues with its result in the same call, so a run of N
steps costs O(N). A plain result (`StepRun`) may wait for the attempt's next commit, but it is
stored before the next step body starts (`host.durable`, see `executor`). A sleep, a wait, a
child run or a step retry is committed as its op and then suspends the handler with
`StepSuspended` (a BaseException); the attempt ends once every step body still running (a
parallel branch) has finished and committed.

A step body's exceptions belong to the step, whatever their class (`SystemExit` and
`KeyboardInterrupt` too): they are caught in the body's own frame, so they never reach the
event loop. This is the only module of the core that imports the SDK (to build `Context`).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import math
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from outlast.context import Context, ReplayAwareLogger, SyncContext
from outlast.core import jsonutil, logcontext, scope
from outlast.core.durations import to_ms
from outlast.core.events import text_problem
from outlast.core.interrupts import Interrupt, LeaseLost, StepSuspended
from outlast.core.keys import StepCounter
from outlast.core.models import RETRYING, EventRecord, LogLine, MemoEntry
from outlast.core.ops import (
    FunctionError,
    InvokeFunction,
    Outcome,
    Publish,
    RunComplete,
    SendEvent,
    Sleep,
    StepAttemptFailed,
    StepFailed,
    StepOp,
    StepRun,
    Suspended,
    WaitForEvent,
    WaitForMany,
    WaitForSignal,
)
from outlast.core.result_types import result_type
from outlast.core.retry import ErrorInfo, StepPolicy
from outlast.core.sources import LocalFunction
from outlast.errors import (
    FunctionConfigError,
    InvalidEventError,
    NonRetriableError,
    PayloadTooLargeError,
    RetryAfterError,
    StepError,
    StepTimeoutError,
    StepUsageError,
)
from outlast.events import Event
from outlast.runtime.drivers.base import AttemptHost
from outlast.step import Step, SyncStep

user_log = logging.getLogger("outlast.run")
#: errors that fail at once, inside a step body or outside
FINAL_ERRORS = (NonRetriableError, StepUsageError, PayloadTooLargeError, StepError)
Validate = Callable[[list[Any]], list[EventRecord]]
#: a step body to call: the function, its arguments and the step's own policy
StepCall = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any], StepPolicy]
NO_POLICY = StepPolicy()


class LocalDriver:
    def __init__(
        self,
        *,
        lookup: Callable[[str, str], LocalFunction | None],
        validate: Validate,
        step_threads: ThreadPoolExecutor,
        handler_threads: ThreadPoolExecutor,
        max_steps_per_run: int,
    ) -> None:
        self.lookup = lookup
        self.validate = validate
        self.step_threads = step_threads
        self.handler_threads = handler_threads
        self.max_steps_per_run = max_steps_per_run

    async def execute(self, host: AttemptHost) -> Outcome:
        fn = self.lookup(host.run.app_id, host.run.function_id)
        if fn is None:  # the worker dispatches only what it serves; a re-sync may have raced it
            return FunctionError(
                error=ErrorInfo(
                    name="FunctionNotFoundError",
                    no_retry=True,
                    message=(
                        f"function {host.run.function_id!r} is not defined in app {host.run.app_id!r} in this process"
                    ),
                )
            )
        return await LocalAttempt(host, self).run_handler(fn)


class LocalAttempt:
    """The memo cursor of one attempt, and the `StepHost` its `Step` calls."""

    def __init__(self, host: AttemptHost, driver: LocalDriver) -> None:
        self.host = host
        self.driver = driver
        self.counter = StepCounter()
        self.inflight: set[asyncio.Future[Any]] = set()
        #: memo entries (finished, pending or retrying) the handler has not reached again yet
        self.unvisited = set(host.run.memo)

    @property
    def replaying(self) -> bool:
        """True while the handler is still going over steps it has already run."""
        return bool(self.unvisited)

    def now_ms(self) -> int:
        return self.host.now_ms()

    # -- the whole attempt ---------------------------------------------------------------------

    async def run_handler(self, fn: LocalFunction) -> Outcome:
        try:
            output = await self._call_handler(fn)
        except StepSuspended:
            await self._settle()
            return Suspended()
        except (LeaseLost, asyncio.CancelledError):
            raise
        except BaseException as exc:
            await self._settle()
            return FunctionError(error=error_info(exc, self.now_ms()))
        await self._settle()
        try:
            value, text = jsonutil.roundtrip(output)
        except jsonutil.NotJSONError as exc:
            return FunctionError(
                error=ErrorInfo(
                    name="OutputUnserializableError", no_retry=True, message=f"the function's return value: {exc}"
                )
            )
        return RunComplete(output=value, output_bytes=len(text.encode()))

    def _call_handler(self, fn: LocalFunction) -> Awaitable[Any]:
        run = self.host.run
        events = fn.parse_events([Event.from_record(e) for e in run.events])  # EventValidationError: run fails
        logger = ReplayAwareLogger(
            user_log,
            lambda: self.replaying,
            {"run_id": run.run_id, "function_id": run.function_id},
            sink=self._keep_log,
        )
        step = Step(self)
        common: dict[str, Any] = dict(
            event=events[0],
            events=events,
            run_id=run.run_id,
            function_id=run.function_id,
            logger=logger,
            _function_attempt=run.attempt,
        )
        if fn.is_async:
            return fn.handler(Context(step=step, **common))  # type: ignore[no-any-return]
        loop = asyncio.get_running_loop()
        ctx = SyncContext(step=SyncStep(step, loop), **common)
        run_in = contextvars.copy_context()
        return loop.run_in_executor(self.driver.handler_threads, lambda: run_in.run(fn.handler, ctx))

    def _keep_log(self, level: str, message: str) -> None:
        # PostgreSQL text cannot hold NUL; a line is kept with it shown as U+FFFD, not refused
        self.host.log(LogLine(ts=self.now_ms(), level=level, message=message.replace("\x00", "\ufffd")))

    async def _settle(self) -> None:
        """Let parallel step bodies still running finish and commit before the attempt ends."""
        while self.inflight:
            done = list(self.inflight)
            self.inflight.clear()
            results = await asyncio.gather(*done, return_exceptions=True)
            if any(isinstance(r, LeaseLost) for r in results):
                raise LeaseLost()

    # -- the memo cursor -----------------------------------------------------------------------

    def _key(self, step_id: str) -> str:
        if not isinstance(step_id, str) or not step_id:
            raise StepUsageError(f"a step id must be a non-empty string, got {step_id!r}")
        if (problem := text_problem(step_id)) is not None:
            raise StepUsageError(f"step id {step_id!r}: {problem}")
        if scope.in_step.get():
            raise StepUsageError(f"step {step_id!r} is called inside another step; steps cannot be nested")
        return self.counter.next_key(step_id)

    def _found(self, key: str) -> MemoEntry | None:
        """The memo entry if the step is done; None if it must run; StepSuspended if it must wait."""
        memo = self.host.run.memo
        entry = memo.get(key)
        self.unvisited.discard(key)
        if entry is not None and entry.final:
            return entry
        if entry is None:
            self.unvisited.clear()  # past the memo: what follows is new
            if len(memo) + 1 > self.driver.max_steps_per_run:
                raise StepUsageError(
                    f"run {self.host.run.run_id} would have more than "
                    f"{self.driver.max_steps_per_run} steps (max_steps_per_run)"
                )
            return None
        if entry.status == RETRYING and (entry.deadline or 0) <= self.now_ms():
            return None
        raise StepSuspended()

    async def _record(self, op: StepOp, *, defer: bool = False) -> MemoEntry:
        [entry] = await self.host.apply([op], defer=defer)
        if entry.final:
            return entry
        raise StepSuspended()

    # -- StepHost ------------------------------------------------------------------------------

    async def run(
        self,
        step_id: str,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        policy: StepPolicy | None = None,
    ) -> Any:
        """A new step's body and its commit run in one task of their own, in the step's context;
        the handler awaits the step's reply, so giving up on the step does not stop its commit.
        The task is in `inflight` before this awaits anything: a parallel branch that suspends the
        attempt meanwhile must find it there (`_settle`), or its body would run again."""
        key = self._key(step_id)
        try:
            kind = result_type(fn)
        except FunctionConfigError as exc:
            raise StepUsageError(f"step {step_id!r}: {exc}") from None
        entry = self._found(key)
        if entry is None:
            previous = self.host.run.memo.get(key)
            step_context = contextvars.copy_context()  # the body's: it is in a step, and logs name it
            step_context.run(_enter_step, step_id, previous.attempts if previous else 0)
            loop = asyncio.get_running_loop()
            reply: asyncio.Future[MemoEntry] = loop.create_future()
            call = (fn, args, kwargs, policy or NO_POLICY)
            task = loop.create_task(self._step(reply, key, step_id, call), context=step_context)
            self.inflight.add(task)
            entry = await reply
        return result_of(entry) if kind is None else kind.load(result_of(entry))

    async def _step(
        self,
        reply: asyncio.Future[MemoEntry],
        key: str,
        step_id: str,
        call: StepCall,
    ) -> MemoEntry | None:
        """`_execute`, its outcome handed to the waiting handler. This is `asyncio.shield` without
        its extra future and loop turn (about 5 % of the 3-step benchmark's time): once the
        handler has given up (`reply` cancelled), the task stays in `inflight` and ends as
        `_execute` did, so `_settle` sees a lost lease."""
        try:
            entry = await self._execute(key, step_id, call)
        except asyncio.CancelledError:
            reply.cancel()
            raise
        except BaseException as exc:
            if reply.cancelled():
                raise
            self.inflight.discard(asyncio.current_task())  # type: ignore[arg-type]
            reply.set_exception(exc)
            return None
        if not reply.cancelled():
            self.inflight.discard(asyncio.current_task())  # type: ignore[arg-type]
            reply.set_result(entry)
        return entry

    async def _execute(self, key: str, step_id: str, call: StepCall) -> MemoEntry:
        if await self.host.paused():
            raise StepSuspended()  # the function is paused: no new step body until it is resumed
        await self.host.durable()  # results the handler went on with are stored before a body runs
        fn, args, kwargs, policy = call
        started = self.now_ms()
        ok, value = await self._call_body(fn, args, kwargs, policy.timeout_ms)
        op: StepOp
        defer = False  # a plain result may wait for the attempt's next commit (`executor`)
        if not ok:
            op = StepAttemptFailed(
                key=key,
                step_id=step_id,
                error=error_info(value, self.now_ms()),
                started_at=started,
                max_attempts=policy.max_attempts,
                backoff=policy.backoff,
                policy=policy.describe(),
            )
        else:
            try:
                kind = result_type(fn)  # checked by `run` already: built, cached
                output, text = jsonutil.roundtrip(value if kind is None else kind.dump(value))
                op = StepRun(
                    key=key,
                    step_id=step_id,
                    output=output,
                    started_at=started,
                    output_bytes=len(text.encode()),
                    policy=policy.describe(),
                )
                # PostgreSQL refuses NUL in text: such a result is committed at once, so its
                # refusal fails the step where it is, not the attempt later on
                defer = "\\u0000" not in text
            except jsonutil.NotJSONError as exc:
                op = StepFailed(
                    key=key,
                    step_id=step_id,
                    started_at=started,
                    error=ErrorInfo(
                        name="NonRetriableError",
                        no_retry=True,
                        message=f"step {step_id!r} returned a value that is not JSON-serialisable: {exc}",
                    ),
                )
        return await self._record(op, defer=defer)

    async def _call_body(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], timeout_ms: int | None = None
    ) -> tuple[bool, Any]:
        """(True, value) or (False, the exception it raised, whatever its class). Runs in the step's
        own task and context (`run`); a plain function runs in a thread, in a copy of that context.

        With a `timeout_ms` (wall-clock, whatever the engine's clock), an attempt over it is
        (False, StepTimeoutError): an async body is cancelled; a plain one's thread cannot be, so
        its late result is dropped, never committed."""
        if timeout_ms is None:
            return await self._body(fn, args, kwargs)
        limit = asyncio.timeout(timeout_ms / 1000)
        try:
            async with limit:
                done = await self._body(fn, args, kwargs)
        except TimeoutError:
            if not limit.expired():
                raise
        if limit.expired():
            return False, StepTimeoutError(f"the attempt ran longer than the step's timeout of {timeout_ms} ms")
        return done

    async def _body(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
        if inspect.iscoroutinefunction(fn):
            return await _captured(lambda: fn(*args, **kwargs))
        in_thread = functools.partial(contextvars.copy_context().run, _call_captured, fn, args, kwargs)
        done = await asyncio.get_running_loop().run_in_executor(self.driver.step_threads, in_thread)
        if done[0] and inspect.isawaitable(done[1]):
            return await _captured(lambda: done[1])
        return done

    async def sleep_until(self, step_id: str, until_ms: int) -> None:
        key = self._key(step_id)
        if self._found(key) is None:
            await self._record(Sleep(key=key, step_id=step_id, until_ms=until_ms))

    async def wait_for_event(
        self, step_id: str, *, event: str, expression: str | None, expires_at: int, lookback_ms: int | None = None
    ) -> dict[str, Any] | None:
        key = self._key(step_id)
        entry = self._found(key) or await self._record(
            WaitForEvent(
                key=key,
                step_id=step_id,
                event=event,
                expression=expression,
                expires_at=expires_at,
                lookback_ms=lookback_ms,
            )
        )
        return result_of(entry)  # type: ignore[no-any-return]

    async def wait_for_many(
        self,
        step_id: str,
        *,
        mode: str,
        parts: tuple[tuple[str, str | None], ...],
        expires_at: int,
        lookback_ms: int | None,
    ) -> Any:
        key = self._key(step_id)
        entry = self._found(key) or await self._record(
            WaitForMany(
                key=key, step_id=step_id, mode=mode, parts=parts, expires_at=expires_at, lookback_ms=lookback_ms
            )
        )
        return result_of(entry)

    async def wait_for_signal(
        self, step_id: str, *, signal: str, expires_at: int, on_conflict: str
    ) -> dict[str, Any] | None:
        key = self._key(step_id)
        entry = self._found(key) or await self._record(
            WaitForSignal(key=key, step_id=step_id, signal=signal, expires_at=expires_at, on_conflict=on_conflict)
        )
        found = result_of(entry)  # Inngest's shape: {"signal": name, "data": {...}}
        return None if found is None else dict(found["data"])

    async def invoke(self, step_id: str, *, function_slug: str, data: dict[str, Any], expires_at: int | None) -> Any:
        key = self._key(step_id)
        entry = self._found(key) or await self._record(
            InvokeFunction(key=key, step_id=step_id, function_slug=function_slug, data=data, expires_at=expires_at)
        )
        return result_of(entry)

    async def send_events(self, step_id: str, events: list[Any]) -> list[str]:
        key = self._key(step_id)
        entry = self._found(key)
        if entry is None:
            try:
                records = self.driver.validate(events)
            except (InvalidEventError, PayloadTooLargeError) as exc:
                raise StepUsageError(f"step {step_id!r}: {exc}") from None
            entry = await self._record(SendEvent(key=key, step_id=step_id, events=records))
        return result_of(entry)  # type: ignore[no-any-return]

    async def publish(self, step_id: str, *, channel: str, topic: str, data: Any, data_bytes: int) -> None:
        key = self._key(step_id)
        entry = self._found(key) or await self._record(
            Publish(key=key, step_id=step_id, channel=channel, topic=topic, data=data, data_bytes=data_bytes)
        )
        result_of(entry)  # a refused message (too large) raises StepError


def result_of(entry: MemoEntry) -> Any:
    """A finished step's value, or its error raised as StepError."""
    if entry.status == "failed":
        err = entry.error or {}
        raise StepError(
            err.get("message", ""), name=err.get("name", "Error"), step_id=entry.step_id, stack=err.get("stack", "")
        )
    return entry.output


def _enter_step(step_id: str, attempt: int) -> None:
    """Inside a step body's own context: it is in a step, of this attempt, and its log lines say so."""
    scope.in_step.set(True)
    scope.step_attempt.set(attempt)
    logcontext.enter_step(step_id, attempt)


async def _captured(make: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
    try:
        return True, await make()
    except Interrupt:
        raise
    except BaseException as exc:
        return False, exc


def _call_captured(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except Interrupt:
        raise
    except BaseException as exc:
        return False, exc


def error_info(exc: BaseException, now_ms: int) -> ErrorInfo:
    """An exception as the retry decision and the trace see it."""
    name = exc.name if isinstance(exc, StepError) else type(exc).__name__
    message = getattr(exc, "message", None) if isinstance(exc, (*FINAL_ERRORS, RetryAfterError)) else None
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    no_retry, retry_at = isinstance(exc, FINAL_ERRORS), None
    if isinstance(exc, RetryAfterError):
        try:
            retry_at = retry_after_ms(exc.retry_after, now_ms)
        except (ValueError, TypeError, OverflowError) as problem:  # a programming error: no retry would help
            message, no_retry = f"{message}; unusable retry time: {problem}", True
    return ErrorInfo(
        name=name or type(exc).__name__,
        message=message if message is not None else str(exc),
        stack=stack,
        no_retry=no_retry,
        retry_at=retry_at,
    )


def retry_after_ms(value: Any, now_ms: int) -> int:
    """The absolute time a RetryAfterError asks for (a duration from now, or a datetime); a
    ValueError names the value when it is none of those."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"retry_after: expected a finite number of milliseconds, got {value!r}")
    return now_ms + to_ms(value, what="retry_after")
