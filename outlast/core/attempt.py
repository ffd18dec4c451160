"""One attempt of a run on the local driver, checkpointed.

The handler runs straight through. A step found in the memo returns its stored value; a new
step runs its body, commits its result under the run's lease and the handler continues in the
same call, so a run of N steps costs O(N). A sleep, a wait, a child run or a step retry commits
a pending row and raises `Suspended`: the attempt ends once every step body still running (a
parallel branch) has finished and committed, and the run's item becomes due again at the
earliest time anything it waits for can happen.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from outlast.context import current_step_attempt
from outlast.core import jsonutil
from outlast.core.backoff import backoff_ms, retry_after_ms
from outlast.core.interrupts import LeaseLost, Suspended
from outlast.core.keys import StepCounter
from outlast.errors import (
    NonRetriableError,
    PayloadTooLargeError,
    RetryAfterError,
    StepError,
    StepUsageError,
    StoreError,
)
from outlast.storage.base import Claimed, Commit, CommitResult, Finish, MemoEntry, StepWrite, Suspend

if TYPE_CHECKING:
    from outlast.core.engine import Engine
    from outlast.core.registry import WaitSpec
    from outlast.events import EventRecord

log = logging.getLogger("outlast.worker")
_in_step: contextvars.ContextVar[bool] = contextvars.ContextVar("outlast_in_step", default=False)


def error_dict(exc: BaseException) -> dict[str, Any]:
    name = getattr(exc, "name", None) if isinstance(exc, StepError) else type(exc).__name__
    message = exc.message if isinstance(exc, (StepError, NonRetriableError, RetryAfterError)) else str(exc)
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"name": name or type(exc).__name__, "message": message, "stack": stack}


@dataclass
class Attempt:
    engine: Engine
    claimed: Claimed
    max_attempts: int
    counter: StepCounter = field(default_factory=StepCounter)
    wake_at: int | None = None
    inflight: set[asyncio.Future[Any]] = field(default_factory=set)
    replaying: bool = False

    def __post_init__(self) -> None:
        assert self.claimed.run is not None
        self.state = self.claimed.run
        self.memo: dict[str, MemoEntry] = self.state.memo
        self._unvisited = {k for k, m in self.memo.items() if m.status in ("completed", "failed")}
        self.replaying = bool(self._unvisited)
        self.new_steps = 0
        self.outcome = "lost"
        self.suspend_reason = "suspended"

    # -- committing ---------------------------------------------------------------------------

    async def commit(self, *, steps: list[StepWrite] = (), waits: list[WaitSpec] = (),  # type: ignore[assignment]
                     events: list[EventRecord] = (), outcome: Suspend | Finish | None = None) -> None:  # type: ignore[assignment]
        now = self.engine.clock.now_ms()
        commit = Commit(self.claimed.item_id, self.claimed.lease_token, self.state.run_id, now,
                        now + self.engine.settings.lease_ms, list(steps), list(waits), list(events), outcome)
        result = await self._commit_retrying(commit)
        if not result.ok:
            raise LeaseLost()
        if outcome is not None:
            self.outcome = outcome.status if isinstance(outcome, Finish) else self.suspend_reason
        for w in steps:
            self.memo[w.key] = MemoEntry(w.key, w.step_id, w.kind, w.status, w.attempts, w.output, w.error,
                                         w.started_at, w.ended_at, w.deadline)

    async def _commit_retrying(self, commit: Commit) -> CommitResult:
        """A StoreError means nothing was committed, and a commit is safe to repeat (the lease token,
        insert-once memo rows and event ids make a repeat harmless): retry with backoff while the
        lease can still be ours, then give the run up to whoever takes the expired lease."""
        delay, spent = 0.05, 0.0
        while True:
            try:
                return await self.engine.commit(commit)
            except StoreError as exc:
                if spent + delay > self.engine.settings.lease_ms / 1000:
                    log.warning("giving up a commit of run %s: %s", commit.run_id, exc)
                    raise LeaseLost() from exc
                log.warning("commit of run %s failed, retrying: %s", commit.run_id, exc)
                await asyncio.sleep(delay)
                spent, delay = spent + delay, min(delay * 2, 2.0)

    def suspend_until(self, when: int, reason: str) -> Suspended:
        """Record why and until when the run waits; the earliest time wins."""
        if self.wake_at is None or when < self.wake_at:
            self.wake_at, self.suspend_reason = when, reason
        return Suspended()

    # -- step lookup --------------------------------------------------------------------------

    def key_for(self, step_id: str) -> str:
        if not isinstance(step_id, str) or not step_id:
            raise StepUsageError(f"a step id must be a non-empty string, got {step_id!r}")
        if _in_step.get():
            raise StepUsageError(f"step {step_id!r} is called inside another step; steps cannot be nested")
        return self.counter.next_key(step_id)

    def finished(self, key: str) -> MemoEntry | None:
        """The memo entry if the step is done; raise Suspended if it is still pending."""
        entry = self.memo.get(key)
        if entry is None or entry.status == "retrying":
            self.replaying = False
            self._count_new_step(entry)
            return None
        if entry.status in ("completed", "failed"):
            self._unvisited.discard(key)
            self.replaying = bool(self._unvisited)
            return entry
        raise self.suspend_until(entry.deadline or self.engine.clock.now_ms(), entry.status)

    def _count_new_step(self, entry: MemoEntry | None) -> None:
        if entry is None:
            self.new_steps += 1
        limit = self.engine.settings.max_steps_per_run
        if len(self.memo) + (1 if entry is None else 0) > limit:
            raise StepUsageError(f"run {self.state.run_id} would have more than {limit} steps (max_steps_per_run)")

    @staticmethod
    def result_of(entry: MemoEntry) -> Any:
        if entry.status == "failed":
            err = entry.error or {}
            raise StepError(err.get("message", ""), name=err.get("name", "Error"), step_id=entry.step_id,
                            stack=err.get("stack", ""))
        return entry.output

    # -- step.run -----------------------------------------------------------------------------

    async def run_step(self, step_id: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                       kind: str = "run") -> Any:
        key = self.key_for(step_id)
        entry = self.finished(key)
        if entry is not None:
            return self.result_of(entry)
        task: asyncio.Future[Any] = asyncio.ensure_future(self._execute(key, step_id, fn, args, kwargs, kind))
        self.inflight.add(task)
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self.inflight.discard(task)

    async def _execute(self, key: str, step_id: str, fn: Callable[..., Any], args: tuple[Any, ...],
                       kwargs: dict[str, Any], kind: str) -> Any:
        previous = self.memo.get(key)
        attempt = previous.attempts if previous else 0
        started = (previous.started_at if previous else None) or self.engine.clock.now_ms()
        try:
            value = await self._call_body(fn, args, kwargs, attempt)
            output, _text = self._checked_output(step_id, value)
        except Exception as exc:
            return await self._step_failed(key, step_id, kind, exc, attempt, started)
        await self.commit(steps=[StepWrite(key, step_id, kind, "completed", attempt + 1, started,
                                           self.engine.clock.now_ms(), output)])
        return output

    async def _call_body(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                         attempt: int) -> Any:
        ctx = contextvars.copy_context()
        ctx.run(_in_step.set, True)
        ctx.run(current_step_attempt.set, attempt)
        if inspect.iscoroutinefunction(fn):
            return await asyncio.get_running_loop().create_task(fn(*args, **kwargs), context=ctx)
        result = await asyncio.get_running_loop().run_in_executor(
            self.engine.threads, lambda: ctx.run(fn, *args, **kwargs))
        if inspect.isawaitable(result):
            return await result
        return result

    def _checked_output(self, step_id: str, value: Any) -> tuple[Any, str]:
        try:
            output, text = jsonutil.roundtrip(value)
        except jsonutil.NotJSONError as exc:
            raise NonRetriableError(f"step {step_id!r} returned a value that is not JSON-serialisable: {exc}") from None
        limit = self.engine.settings.max_step_output_bytes
        if len(text) > limit:
            raise PayloadTooLargeError(f"step {step_id!r} output is {len(text)} bytes, the limit is {limit} bytes")
        return output, text

    async def _step_failed(self, key: str, step_id: str, kind: str, exc: Exception, attempt: int, started: int) -> Any:
        now = self.engine.clock.now_ms()
        error = error_dict(exc)
        final = isinstance(exc, (NonRetriableError, StepUsageError, PayloadTooLargeError)) \
            or attempt + 1 >= self.max_attempts
        if final:
            await self.commit(steps=[StepWrite(key, step_id, kind, "failed", attempt + 1, started, now, None, error)])
            raise StepError(error["message"], name=error["name"], step_id=step_id, stack=error["stack"])
        due = retry_after_ms(exc.retry_after, now) if isinstance(exc, RetryAfterError) \
            else now + backoff_ms(attempt + 1, scale=self.engine.settings.backoff_scale)
        await self.commit(steps=[StepWrite(key, step_id, kind, "retrying", attempt + 1, started, None, None, error)])
        raise self.suspend_until(due, "retrying")

    # -- suspending steps ---------------------------------------------------------------------

    async def pending_step(self, step_id: str, kind: str, status: str, deadline: int, timeout_output: Any = None,
                           effects: Callable[[str], tuple[list[WaitSpec], list[EventRecord]]] | None = None) -> Any:
        """sleep / wait_for_event / invoke: done → memo value; else store the pending row and suspend.

        `effects(key)` gives the waits and events to commit with the pending row.
        """
        key = self.key_for(step_id)
        entry = self.finished(key)
        if entry is not None:
            return self.result_of(entry)
        now = self.engine.clock.now_ms()
        if deadline <= now and kind == "sleep":
            await self.commit(steps=[StepWrite(key, step_id, kind, "completed", 1, now, now)])
            return None
        waits, events = effects(key) if effects else ([], [])
        await self.commit(steps=[StepWrite(key, step_id, kind, status, 1, now, None, None, None, deadline,
                                           timeout_output)], waits=waits, events=events)
        raise self.suspend_until(deadline, status)

    async def send_events(self, step_id: str, events: list[EventRecord]) -> list[str]:
        key = self.key_for(step_id)
        entry = self.finished(key)
        if entry is not None:
            return self.result_of(entry)  # type: ignore[no-any-return]
        now = self.engine.clock.now_ms()
        ids = [e.id for e in events]
        await self.commit(steps=[StepWrite(key, step_id, "send_event", "completed", 1, now, now, ids)],
                          events=events)
        return ids

    # -- the whole attempt --------------------------------------------------------------------

    async def finish(self, body: Awaitable[Any]) -> None:
        """Run the handler to its end and commit the outcome (unless the lease was lost)."""
        try:
            await self._finish(body)
        except LeaseLost:
            return

    async def _finish(self, body: Awaitable[Any]) -> None:
        try:
            output = await body
        except Suspended:
            await self._settle()
            await self.commit(outcome=Suspend(self.wake_at or self.engine.clock.now_ms()))
            return
        except Exception as exc:
            await self._settle()
            await self._function_failed(exc)
            return
        await self._settle()
        try:
            value, _text = jsonutil.roundtrip(output)
        except jsonutil.NotJSONError as exc:
            await self.commit(outcome=Finish("failed", error={
                "name": "OutputUnserializableError", "message": f"the function's return value: {exc}"},
                trigger_events=self.state.events))
            return
        await self.commit(outcome=Finish("completed", output=value, trigger_events=self.state.events))

    async def _settle(self) -> None:
        """Let parallel step bodies still running finish and commit before the attempt ends."""
        while self.inflight:
            done = list(self.inflight)
            self.inflight.clear()
            results = await asyncio.gather(*done, return_exceptions=True)
            if any(isinstance(r, LeaseLost) for r in results):
                raise LeaseLost()

    async def _function_failed(self, exc: Exception) -> None:
        now = self.engine.clock.now_ms()
        attempt = self.state.attempt + 1
        final = isinstance(exc, (NonRetriableError, StepError, StepUsageError, PayloadTooLargeError)) \
            or attempt >= self.max_attempts
        if final:
            await self.commit(outcome=Finish("failed", error=error_dict(exc), trigger_events=self.state.events))
            return
        due = retry_after_ms(exc.retry_after, now) if isinstance(exc, RetryAfterError) \
            else now + backoff_ms(attempt, scale=self.engine.settings.backoff_scale)
        self.suspend_reason = "retrying"
        await self.commit(outcome=Suspend(due, attempt=attempt))


