"""The step API handlers call: `ctx.step.run`, `sleep`, `sleep_until` and friends.

`Step` checks the user's arguments (durations, expressions, ids) and hands plain values to the
`StepHost` of the attempt it runs in; that host answers from the memo or records the step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

from outlast.core import jsonutil, scope
from outlast.core.durations import Duration, to_ms
from outlast.core.expressions import EVENT_AND_ASYNC, ExpressionError, compile_expression, match_to_expression
from outlast.core.ops import MAX_SLEEP_MS, lookback_problem, many_problem, wait_problem
from outlast.core.realtime import channel_problem, topic_problem
from outlast.core.result_types import result_type
from outlast.core.retry import StepPolicy, backoff_rule
from outlast.core.signals import ON_CONFLICT, signal_problem
from outlast.core.step_host import StepHost
from outlast.errors import StepUsageError
from outlast.events import Event, EventType, event_name
from outlast.options import Backoff, StepOptions, WaitFor

T = TypeVar("T")
M = TypeVar("M")
EventsInput = Event | dict[str, Any] | list[Event | dict[str, Any]]


class Step:
    """Steps for `async def` handlers. Each call is evaluated in call order, so the keys of
    steps started together with `asyncio.gather` are deterministic."""

    def __init__(self, host: StepHost) -> None:
        self._host = host

    def run(
        self, step_id: str | StepOptions, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Coroutine[Any, Any, Any]:
        """Run `fn(*args, **kwargs)` once for this run and return its (JSON) result. `step_id` may
        be a `StepOptions` (the step's own retries, timeout per attempt and backoff). The result
        is stored before the next step body starts, or with the run's next commit if that comes
        first (a sleep, a wait, a sent event, the run's end); the code between steps may run
        before it is stored, and runs again if the process dies first."""
        if isinstance(step_id, StepOptions):
            return self._host.run(step_id.id, fn, args, kwargs, _step_policy(step_id))
        return self._host.run(step_id, fn, args, kwargs)

    async def sleep(self, step_id: str, duration: Duration) -> None:
        await self._host.sleep_until(step_id, self._host.now_ms() + _ms(step_id, duration))

    async def sleep_until(self, step_id: str, when: datetime | str) -> None:
        at = _timestamp_ms(step_id, when)
        if at - self._host.now_ms() > MAX_SLEEP_MS:
            raise StepUsageError(f"step {step_id!r}: cannot sleep longer than one year")
        await self._host.sleep_until(step_id, at)

    @overload
    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: EventType[M],
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event[M] | None: ...

    @overload
    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event | None: ...

    async def wait_for_event(
        self,
        step_id: str,
        *,
        event: str | EventType[Any],
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event[Any] | None:
        """The first matching event that arrives after this wait is stored, or None on timeout.
        With `lookback` (at most 7 days), the earliest matching event received that long before
        the wait began, and not returned by an earlier wait of this run, resolves it at once.
        With an `EventType`, its data is the model (EventValidationError if it does not fit)."""
        if timeout is None:
            raise StepUsageError(f"step {step_id!r}: wait_for_event needs a timeout")
        name = event_name(event)
        expression = _wait_expression(step_id, name, match, if_)
        expires = self._host.now_ms() + _ms(step_id, timeout, what="timeout")
        lookback_ms = _lookback_ms(step_id, lookback)
        found = await self._host.wait_for_event(
            step_id, event=name, expression=expression, expires_at=expires, lookback_ms=lookback_ms
        )
        return _received(event, found)

    async def wait_for_any(
        self, step_id: str, waits: list[WaitFor], *, timeout: Duration | None = None, lookback: Duration | None = None
    ) -> Event[Any] | None:
        """The first event matching any of `waits` (up to 10), or None on timeout; the other
        waits end with it. Its data is the model when its wait names an `EventType`."""
        found = await self._wait_many(step_id, "any", waits, timeout, lookback)
        if found is None:
            return None
        kinds = [w.event for w in waits if isinstance(w.event, EventType) and w.event.name == found["name"]]
        return _received(kinds[0] if kinds else found["name"], found)

    async def wait_for_all(
        self, step_id: str, waits: list[WaitFor], *, timeout: Duration | None = None, lookback: Duration | None = None
    ) -> list[Event[Any] | None]:
        """The first event matching each of `waits` (up to 10), in their order; at the timeout,
        None stands for those that did not come. Data is the model where a wait names an `EventType`."""
        found = await self._wait_many(step_id, "all", waits, timeout, lookback)
        return [_received(w.event, e) for w, e in zip(waits, found or [None] * len(waits), strict=True)]

    async def _wait_many(
        self, step_id: str, mode: str, waits: Any, timeout: Duration | None, lookback: Duration | None
    ) -> Any:
        if timeout is None:
            raise StepUsageError(f"step {step_id!r}: wait_for_{mode} needs a timeout")
        if not isinstance(waits, (list, tuple)) or not all(isinstance(w, WaitFor) for w in waits):
            raise StepUsageError(f"step {step_id!r}: waits: expected a list of outlast.WaitFor")
        if (problem := many_problem(mode, len(waits))) is not None:
            raise StepUsageError(f"step {step_id!r}: {problem}")
        names = [event_name(w.event) for w in waits]
        parts = tuple(
            (name, _wait_expression(step_id, name, w.match, w.if_)) for name, w in zip(names, waits, strict=True)
        )
        expires = self._host.now_ms() + _ms(step_id, timeout, what="timeout")
        return await self._host.wait_for_many(
            step_id, mode=mode, parts=parts, expires_at=expires, lookback_ms=_lookback_ms(step_id, lookback)
        )

    async def wait_for_signal(
        self, step_id: str, *, signal: str, timeout: Duration | None = None, on_conflict: str = "fail"
    ) -> dict[str, Any] | None:
        """The data of the signal sent to `signal` (`{}` without data), or None on timeout. One run
        waits on a name at a time: a second wait fails with SignalConflictError, or takes the name
        over with `on_conflict="replace"`."""
        if timeout is None:
            raise StepUsageError(f"step {step_id!r}: wait_for_signal needs a timeout")
        if (problem := signal_problem(signal)) is not None:
            raise StepUsageError(f"step {step_id!r}: {problem}")
        if on_conflict not in ON_CONFLICT:
            raise StepUsageError(f"step {step_id!r}: on_conflict: expected 'fail' or 'replace', got {on_conflict!r}")
        expires = self._host.now_ms() + _ms(step_id, timeout, what="timeout")
        return await self._host.wait_for_signal(step_id, signal=signal, expires_at=expires, on_conflict=on_conflict)

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

    async def publish(self, step_id: str, *, channel: str, topic: str, data: Any = None) -> None:
        """Publish a realtime message on `channel` once for this run, in step order (a step: a
        replay or a retried attempt does not send it again). Subscribers see it once committed."""
        value, size = _message(step_id, channel, topic, data)
        await self._host.publish(step_id, channel=channel, topic=topic, data=value, data_bytes=size)

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

    def run(self, step_id: str | StepOptions, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        return self._call(self._step.run(step_id, fn, *args, **kwargs))

    def sleep(self, step_id: str, duration: Duration) -> None:
        self._call(self._step.sleep(step_id, duration))

    def sleep_until(self, step_id: str, when: datetime | str) -> None:
        self._call(self._step.sleep_until(step_id, when))

    @overload
    def wait_for_event(
        self,
        step_id: str,
        *,
        event: EventType[M],
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event[M] | None: ...

    @overload
    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str,
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event | None: ...

    def wait_for_event(
        self,
        step_id: str,
        *,
        event: str | EventType[Any],
        timeout: Duration | None = None,
        match: str | None = None,
        if_: str | None = None,
        lookback: Duration | None = None,
    ) -> Event[Any] | None:
        return self._call(
            self._step.wait_for_event(step_id, event=event, timeout=timeout, match=match, if_=if_, lookback=lookback)
        )

    def wait_for_any(
        self, step_id: str, waits: list[WaitFor], *, timeout: Duration | None = None, lookback: Duration | None = None
    ) -> Event[Any] | None:
        return self._call(self._step.wait_for_any(step_id, waits, timeout=timeout, lookback=lookback))

    def wait_for_all(
        self, step_id: str, waits: list[WaitFor], *, timeout: Duration | None = None, lookback: Duration | None = None
    ) -> list[Event[Any] | None]:
        return self._call(self._step.wait_for_all(step_id, waits, timeout=timeout, lookback=lookback))

    def wait_for_signal(
        self, step_id: str, *, signal: str, timeout: Duration | None = None, on_conflict: str = "fail"
    ) -> dict[str, Any] | None:
        return self._call(self._step.wait_for_signal(step_id, signal=signal, timeout=timeout, on_conflict=on_conflict))

    def send_event(self, step_id: str, events: EventsInput) -> list[str]:
        return self._call(self._step.send_event(step_id, events))

    def invoke(
        self, step_id: str, *, function: Any, data: dict[str, Any] | None = None, timeout: Duration | None = None
    ) -> Any:
        return self._call(self._step.invoke(step_id, function=function, data=data, timeout=timeout))

    def publish(self, step_id: str, *, channel: str, topic: str, data: Any = None) -> None:
        self._call(self._step.publish(step_id, channel=channel, topic=topic, data=data))

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


def _message(step_id: str, channel: str, topic: str, data: Any) -> tuple[Any, int]:
    """The message's data as plain JSON and its size, once its channel and topic are checked."""
    problem = channel_problem(channel) or topic_problem(topic)
    if problem is not None:
        raise StepUsageError(f"step {step_id!r}: {problem}")
    try:
        value, text = jsonutil.roundtrip(data)
    except jsonutil.NotJSONError as exc:
        raise StepUsageError(f"step {step_id!r}: published data is not JSON-serialisable: {exc}") from None
    return value, len(text.encode())


def _ms(step_id: str, duration: Duration, what: str = "duration") -> int:
    try:
        ms = to_ms(duration, what=f"step {step_id!r} {what}")
    except ValueError as exc:
        raise StepUsageError(str(exc)) from None
    if ms > MAX_SLEEP_MS:
        raise StepUsageError(f"step {step_id!r}: {what} cannot be longer than one year")
    return ms


def _step_policy(options: StepOptions) -> StepPolicy:
    """A StepOptions checked (StepUsageError naming the step and the option) as the host takes it."""
    where = f"step {options.id!r}"
    retries = options.retries
    if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20):
        raise StepUsageError(f"{where}: retries: expected an integer from 0 to 20, got {retries!r}")
    timeout_ms = None if options.timeout is None else _ms(str(options.id), options.timeout, what="timeout")
    if timeout_ms is not None and timeout_ms <= 0:
        raise StepUsageError(f"{where}: timeout: must be more than 0")
    backoff = None
    if options.backoff is not None:
        b = options.backoff
        if not isinstance(b, Backoff):
            raise StepUsageError(f"{where}: backoff: expected outlast.Backoff(...), got {b!r}")
        try:
            backoff = backoff_rule(initial=b.initial, factor=b.factor, max=b.max, jitter=b.jitter)
        except ValueError as exc:
            raise StepUsageError(f"{where}: backoff: {exc}") from None
    return StepPolicy(max_attempts=None if retries is None else retries + 1, timeout_ms=timeout_ms, backoff=backoff)


def _lookback_ms(step_id: str, lookback: Duration | None) -> int | None:
    if lookback is None:
        return None
    ms = _ms(step_id, lookback, what="lookback")
    if (problem := lookback_problem(ms)) is not None:
        raise StepUsageError(f"step {step_id!r}: {problem}")
    return ms


def _received(event: str | EventType[Any], found: dict[str, Any] | None) -> Event[Any] | None:
    """A wait's match as an `Event`, typed when the wait named an `EventType`: its data is parsed
    on the first run and on every replay alike (the memo holds the JSON form)."""
    if found is None:
        return None
    received = Event.from_dict(found)
    return event.typed(received) if isinstance(event, EventType) else received


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
