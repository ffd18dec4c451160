"""The step API handlers call: `ctx.step.run`, `sleep`, `sleep_until` and friends.

`Step` checks the user's arguments (durations, expressions, ids) and hands plain values to the
`StepHost` of the attempt it runs in; that host answers from the memo or records the step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from outlast.core import scope
from outlast.core.durations import Duration, to_ms
from outlast.core.expressions import EVENT_AND_ASYNC, ExpressionError, compile_expression, match_to_expression
from outlast.core.ops import MAX_SLEEP_MS, wait_problem
from outlast.core.result_types import result_type
from outlast.core.step_host import StepHost
from outlast.errors import StepUsageError
from outlast.events import Event

T = TypeVar("T")
EventsInput = Event | dict[str, Any] | list[Event | dict[str, Any]]


class Step:
    """Steps for `async def` handlers. Each call is evaluated in call order, so the keys of
    steps started together with `asyncio.gather` are deterministic."""

    def __init__(self, host: StepHost) -> None:
        self._host = host

    def run(self, step_id: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Coroutine[Any, Any, Any]:
        """Run `fn(*args, **kwargs)` once for this run and return its (JSON) result."""
        return self._host.run(step_id, fn, args, kwargs)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        await self._host.sleep_until(step_id, self._host.now_ms() + _ms(step_id, duration))

    async def sleep_until(self, step_id: str, when: datetime | str) -> None:
        at = _timestamp_ms(step_id, when)
        if at - self._host.now_ms() > MAX_SLEEP_MS:
            raise StepUsageError(f"step {step_id!r}: cannot sleep longer than one year")
        await self._host.sleep_until(step_id, at)

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
    ) -> Event | None:
        """The first matching event that arrives after this wait is stored, or None on timeout."""
        if timeout is None:
            raise StepUsageError(f"step {step_id!r}: wait_for_event needs a timeout")
        expression = _wait_expression(step_id, event, match, if_)
        expires = self._host.now_ms() + _ms(step_id, timeout, what="timeout")
        found = await self._host.wait_for_event(step_id, event=event, expression=expression, expires_at=expires)
        return None if found is None else Event.from_dict(found)

    async def send_event(self, step_id: str, events: EventsInput) -> list[str]:
        """Send events exactly once for this run; they are stored with the step's result."""
        items = events if isinstance(events, list) else [events]
        return await self._host.send_events(step_id, [e.to_dict() if isinstance(e, Event) else e for e in items])

    async def invoke(
        self, step_id: str, *, function: Any, data: dict[str, Any] | None = None, timeout: Duration | None = None
    ) -> Any:
        """Run another function as a child run and return its output; its failure raises StepError."""
        slug = getattr(getattr(function, "config", None), "slug", None)
        if not isinstance(slug, str):
            raise StepUsageError(f"step {step_id!r}: invoke needs an Outlast function, got {function!r}")
        if data is not None and not isinstance(data, dict):
            raise StepUsageError(f"step {step_id!r}: invoke data must be a dict, got {type(data).__name__}")
        expires = None if timeout is None else self._host.now_ms() + _ms(step_id, timeout, what="timeout")
        output = await self._host.invoke(step_id, function_slug=slug, data=data or {}, expires_at=expires)
        kind = result_type(function.handler)  # checked when `function` was defined
        return output if kind is None else kind.load(output)

    async def parallel(self, *steps: Coroutine[Any, Any, Any]) -> list[Any]:
        """Run step calls concurrently (the same as `asyncio.gather`)."""
        return list(await asyncio.gather(*steps))


class SyncStep:
    """Steps for plain `def` handlers (run in a worker thread): the same methods, blocking."""

    def __init__(self, step: Step, loop: asyncio.AbstractEventLoop) -> None:
        self._step = step
        self._loop = loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if scope.in_step.get():
            coro.close()
            raise StepUsageError("a step is called inside another step; steps cannot be nested")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def run(self, step_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        return self._call(self._step.run(step_id, fn, *args, **kwargs))

    def sleep(self, step_id: str, duration: Duration) -> None:
        self._call(self._step.sleep(step_id, duration))

    def sleep_until(self, step_id: str, when: datetime | str) -> None:
        self._call(self._step.sleep_until(step_id, when))

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
    ) -> Event | None:
        return self._call(self._step.wait_for_event(step_id, event=event, timeout=timeout, match=match, if_=if_))

    def send_event(self, step_id: str, events: EventsInput) -> list[str]:
        return self._call(self._step.send_event(step_id, events))

    def invoke(
        self, step_id: str, *, function: Any, data: dict[str, Any] | None = None, timeout: Duration | None = None
    ) -> Any:
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


def _ms(step_id: str, duration: Duration, what: str = "duration") -> int:
    try:
        ms = to_ms(duration, what=f"step {step_id!r} {what}")
    except ValueError as exc:
        raise StepUsageError(str(exc)) from None
    if ms > MAX_SLEEP_MS:
        raise StepUsageError(f"step {step_id!r}: {what} cannot be longer than one year")
    return ms


def _wait_expression(step_id: str, event: str, match: str | None, if_: str | None) -> str | None:
    try:
        parts = [match_to_expression(match, what=f"step {step_id!r}")] if match else []
        if if_:
            compile_expression(if_, variables=EVENT_AND_ASYNC, result="bool")
            parts.append(f"({if_})")
    except ExpressionError as exc:
        raise StepUsageError(f"step {step_id!r}: {exc}") from None
    expression = " && ".join(parts) or None
    problem = wait_problem(event, expression)
    if problem is not None:
        raise StepUsageError(f"step {step_id!r}: {problem}")
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
