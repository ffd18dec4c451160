"""The step API handlers call: `ctx.step.run`, `sleep`, `sleep_until` and friends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from outlast.core.durations import Duration, to_ms
from outlast.errors import StepUsageError

if TYPE_CHECKING:
    from outlast.core.attempt import Attempt

T = TypeVar("T")
MAX_SLEEP_MS = 366 * 86_400_000


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


def _sleep_ms(step_id: str, duration: Duration) -> int:
    try:
        ms = to_ms(duration, what=f"step {step_id!r} duration")
    except ValueError as exc:
        raise StepUsageError(str(exc)) from None
    if ms > MAX_SLEEP_MS:
        raise StepUsageError(f"step {step_id!r}: cannot sleep longer than one year")
    return ms


def _timestamp_ms(step_id: str, when: datetime | str) -> int:
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError:
            raise StepUsageError(f"step {step_id!r}: {when!r} is not an ISO-8601 time") from None
    if not isinstance(when, datetime):
        raise StepUsageError(f"step {step_id!r}: expected a datetime or ISO-8601 string, got {when!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp() * 1000)
