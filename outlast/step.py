"""The step API handlers call: `ctx.step.run`, `sleep`, `sleep_until` and friends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from outlast.core.durations import Duration, to_ms
from outlast.core.expressions import ExpressionError, compile_expression, match_to_expression
from outlast.core.registry import WaitSpec, wait_spec
from outlast.errors import InvalidEventError, PayloadTooLargeError, StepUsageError
from outlast.events import (
    FUNCTION_CANCELLED,
    FUNCTION_FAILED,
    FUNCTION_FINISHED,
    FUNCTION_INVOKED,
    SYSTEM_PREFIX,
    Event,
    EventRecord,
)

if TYPE_CHECKING:
    from outlast.core.attempt import Attempt

T = TypeVar("T")
MAX_SLEEP_MS = 366 * 86_400_000
WAITABLE_SYSTEM_EVENTS = (FUNCTION_FAILED, FUNCTION_FINISHED, FUNCTION_CANCELLED)
INVOKE_TIMEOUT_ERROR = {"name": "InngestInvokeTimeoutError",
                        "message": "Timed out waiting for invoked function to complete"}


class Step:
    """Steps for `async def` handlers. Each call is evaluated in call order, so the keys of
    steps started together with `asyncio.gather` are deterministic."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt

    def run(self, step_id: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """Run `fn(*args, **kwargs)` once for this run and return its (JSON) result."""
        return self._attempt.run_step(step_id, fn, args, kwargs)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        ms = _sleep_ms(step_id, duration)
        now = self._attempt.engine.clock.now_ms()
        await self._attempt.pending_step(step_id, "sleep", "sleeping", now + ms)

    async def sleep_until(self, step_id: str, when: datetime | str) -> None:
        at = _timestamp_ms(step_id, when)
        now = self._attempt.engine.clock.now_ms()
        if at - now > MAX_SLEEP_MS:
            raise StepUsageError(f"step {step_id!r}: cannot sleep longer than one year")
        await self._attempt.pending_step(step_id, "sleep", "sleeping", at)

    async def wait_for_event(self, step_id: str, *, event: str, timeout: Duration | None = None,
                             match: str | None = None, if_: str | None = None) -> Event | None:
        """The first matching event that arrives after this wait is stored, or None on timeout."""
        if timeout is None:
            raise StepUsageError(f"step {step_id!r}: wait_for_event needs a timeout")
        expression = _wait_expression(step_id, event, match, if_)
        attempt = self._attempt
        deadline = attempt.engine.clock.now_ms() + _sleep_ms(step_id, timeout, what="timeout")
        trigger = attempt.state.events[0].to_dict()

        def effects(key: str) -> tuple[list[WaitSpec], list[EventRecord]]:
            return [wait_spec("wait", event, expression, trigger, deadline, key)], []

        found = await attempt.pending_step(step_id, "wait_for_event", "waiting", deadline, None, effects)
        return None if found is None else Event(name=found["name"], data=found.get("data") or {},
                                                id=found.get("id"), ts=found.get("ts"), user=found.get("user") or {})

    async def send_event(self, step_id: str,
                         events: Event | dict[str, Any] | list[Event | dict[str, Any]]) -> list[str]:
        """Send events exactly once for this run; they are stored with the step's result."""
        try:
            records = self._attempt.engine.validate(events)
        except (InvalidEventError, PayloadTooLargeError) as exc:
            raise StepUsageError(f"step {step_id!r}: {exc}") from None
        return await self._attempt.send_events(step_id, records)

    async def invoke(self, step_id: str, *, function: Any, data: dict[str, Any] | None = None,
                     timeout: Duration | None = None) -> Any:
        """Run another function as a child run and return its output; its failure raises StepError."""
        from outlast.function import Function

        if not isinstance(function, Function):
            raise StepUsageError(f"step {step_id!r}: invoke needs an Outlast function, got {function!r}")
        if data is not None and not isinstance(data, dict):
            raise StepUsageError(f"step {step_id!r}: invoke data must be a dict, got {type(data).__name__}")
        attempt = self._attempt
        now = attempt.engine.clock.now_ms()
        deadline = now + (_sleep_ms(step_id, timeout, what="timeout") if timeout is not None else MAX_SLEEP_MS)
        state = attempt.state

        def effects(key: str) -> tuple[list[WaitSpec], list[EventRecord]]:
            correlation = f"{state.run_id}.{key}"
            payload = {**(data or {}), "_inngest": {
                "fn_id": function.slug, "correlation_id": correlation, "source_app_id": state.app_id,
                "source_fn_id": state.function_id, "expire": deadline}}
            [child] = attempt.engine.validate({"name": FUNCTION_INVOKED, "data": payload}, allow_system=True)
            from outlast.core import jsonutil

            wait = WaitSpec("invoke", FUNCTION_FINISHED, None, "data.correlation_id", jsonutil.dumps(correlation),
                            deadline, key)
            return [wait], [child]

        return await attempt.pending_step(step_id, "invoke", "invoking", deadline, INVOKE_TIMEOUT_ERROR, effects)

    async def parallel(self, *steps: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run step calls concurrently (the same as `asyncio.gather`)."""
        return list(await asyncio.gather(*steps))


class SyncStep:
    """Steps for plain `def` handlers (run in a worker thread): the same methods, blocking."""

    def __init__(self, step: Step, loop: asyncio.AbstractEventLoop) -> None:
        self._step = step
        self._loop = loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        from outlast.core.attempt import _in_step

        if _in_step.get():
            coro.close()
            raise StepUsageError("a step is called inside another step; steps cannot be nested")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        return self._call(self._step.run(step_id, fn, *args, **kwargs))

    def sleep(self, step_id: str, duration: Duration) -> None:
        self._call(self._step.sleep(step_id, duration))

    def sleep_until(self, step_id: str, when: datetime | str) -> None:
        self._call(self._step.sleep_until(step_id, when))

    def wait_for_event(self, step_id: str, *, event: str, timeout: Duration | None = None, match: str | None = None,
                       if_: str | None = None) -> Event | None:
        return self._call(self._step.wait_for_event(step_id, event=event, timeout=timeout, match=match, if_=if_))

    def send_event(self, step_id: str, events: Event | dict[str, Any] | list[Event | dict[str, Any]]) -> list[str]:
        return self._call(self._step.send_event(step_id, events))

    def invoke(self, step_id: str, *, function: Any, data: dict[str, Any] | None = None,
               timeout: Duration | None = None) -> Any:
        return self._call(self._step.invoke(step_id, function=function, data=data, timeout=timeout))

    def parallel(self, calls: list[Callable[[], Any]] | tuple[Callable[[], Any], ...]) -> list[Any]:
        """Run callables that make step calls (`lambda: step.run(...)`) concurrently, in threads.

        Every callable runs to its end before this returns or raises, so no branch's result
        is lost when another branch sleeps or waits.
        """
        import concurrent.futures
        import contextvars

        with concurrent.futures.ThreadPoolExecutor(max(1, len(calls))) as pool:
            futures = [pool.submit(contextvars.copy_context().run, call) for call in calls]
            concurrent.futures.wait(futures)
        return [f.result() for f in futures]


def _sleep_ms(step_id: str, duration: Duration, what: str = "duration") -> int:
    try:
        ms = to_ms(duration, what=f"step {step_id!r} {what}")
    except ValueError as exc:
        raise StepUsageError(str(exc)) from None
    if ms > MAX_SLEEP_MS:
        raise StepUsageError(f"step {step_id!r}: {what} cannot be longer than one year")
    return ms


def _wait_expression(step_id: str, event: str, match: str | None, if_: str | None) -> str:
    if not isinstance(event, str) or not event:
        raise StepUsageError(f"step {step_id!r}: wait_for_event needs an event name")
    if event.lower().startswith(SYSTEM_PREFIX) and event not in WAITABLE_SYSTEM_EVENTS:
        raise StepUsageError(f"step {step_id!r}: {event!r} is a reserved name that is never sent")
    try:
        parts = [match_to_expression(match, what=f"step {step_id!r}")] if match else []
        if if_:
            compile_expression(if_)
            parts.append(f"({if_})")
        expression = " && ".join(parts) or "true"
        compile_expression(expression)
    except ExpressionError as exc:
        raise StepUsageError(f"step {step_id!r}: {exc}") from None
    return expression


def _timestamp_ms(step_id: str, when: datetime | str) -> int:
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise StepUsageError(f"step {step_id!r}: {when!r} is not an ISO-8601 time") from None
    if not isinstance(when, datetime):
        raise StepUsageError(f"step {step_id!r}: expected a datetime or ISO-8601 string, got {when!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)
