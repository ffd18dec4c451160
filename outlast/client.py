"""`Outlast`: an app's function registry, and the way to send events and read runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from outlast.core.events import text_problem
from outlast.core.models import Run, RunFilter
from outlast.core.result_types import result_type
from outlast.core.trace_context import current_trace
from outlast.errors import FunctionConfigError, OutlastError
from outlast.events import FUNCTION_FAILED, Event
from outlast.function import Function, FunctionOptions, build_config, event_types
from outlast.options import TriggerEvent
from outlast.settings import Settings

if TYPE_CHECKING:
    import asyncio

    from outlast.runtime.engine import Engine
    from outlast.runtime.realtime import Hub, Subscribing
    from outlast.runtime.run_results import RunHandle

T = TypeVar("T")
EventInput = Event | dict[str, Any] | list[Event | dict[str, Any]]
#: `rerun(output=...)` not given: the step runs again (`runtime.rerun.UNSET`, not imported here)
_UNSET: Any = object()


class Outlast:
    """An app: a set of functions sharing one store.

    Storage comes from `database_url`, else the `OUTLAST_DATABASE_URL` setting, else a SQLite
    file under `.outlast/` in the working directory. It is opened on first use.
    """

    def __init__(self, app_id: str, *, database_url: str | None = None, settings: Settings | None = None) -> None:
        if not isinstance(app_id, str) or not app_id.strip():
            raise FunctionConfigError("an app needs a non-empty string id")
        if (problem := text_problem(app_id)) is not None:
            raise FunctionConfigError(f"app id {app_id!r}: {problem}")
        self.id = app_id
        self.settings = settings or Settings.from_env(database_url=database_url)
        self.functions: dict[str, Function] = {}
        self._engine: Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    # -- defining functions --------------------------------------------------------------------

    def function(
        self, *, id: str, on_failure: Callable[..., Any] | None = None, **options: Unpack[FunctionOptions]
    ) -> Callable[[Callable[..., Any]], Function]:
        """Register a handler (`async def f(ctx)` or `def f(ctx)`) as a durable function; the
        options are `FunctionOptions` (API.md, "Functions")."""
        if id in self.functions:
            raise FunctionConfigError(f"function {id!r}: option 'id': another function of app {self.id!r} has it")
        config = build_config(self.id, id, options)
        types = event_types(id, options, {k: t for f in self.functions.values() for k, t in f.event_types.items()})

        def register(handler: Callable[..., Any]) -> Function:
            if not callable(handler):
                raise FunctionConfigError(f"function {id!r}: the decorated object is not callable")
            result_type(handler)  # its return annotation, which `step.invoke` returns, must be one Pydantic validates
            fn = Function(handler, config, event_types=types)
            if on_failure is not None:
                fn.on_failure = self._failure_function(fn, on_failure)
            self.functions[id] = fn
            return fn

        return register

    def _failure_function(self, parent: Function, handler: Callable[..., Any]) -> Function:
        fid = f"{parent.id}-failure"
        if fid in self.functions:
            raise FunctionConfigError(f"function {parent.id!r}: option 'on_failure': id {fid!r} is taken")
        trigger = TriggerEvent(FUNCTION_FAILED, if_=f"event.data.function_id == {parent.slug!r}")
        options: FunctionOptions = {"name": f"{parent.name} (failure)", "retries": 0, "trigger": [trigger]}
        config = build_config(self.id, fid, options, failure_of=parent.id)
        fn = Function(handler, config)
        self.functions[fid] = fn
        return fn

    # -- the engine behind the client ----------------------------------------------------------

    async def engine_async(self) -> Engine:
        """The app's engine on its configured store, opened on first use. It sends and reads; it
        serves nothing, so the app's functions are stored only if nobody ever served the app
        (`Engine.add_sender`): a script with an older version of the app never changes what the
        live workers serve."""
        from outlast.runtime.engine import Engine

        if self._engine is None:
            self._engine = Engine.from_settings(self.settings)
            await self._engine.add_sender(self)
        await self._engine.open()
        return self._engine

    def _call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine from synchronous code on the client's private event loop, in a thread of
        its own: so this works from any thread, also one whose event loop is running (a notebook,
        Playwright's sync API), which waits meanwhile. Only the private loop itself cannot wait."""
        import asyncio  # here, not at the top: `import outlast` stays light

        if self._loop is not None and asyncio._get_running_loop() is self._loop:
            raise OutlastError("the blocking API was called on the client's own loop; use the *_async methods there")
        return asyncio.run_coroutine_threadsafe(make(), self._ensure_loop()).result()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        """The client's private event loop, started on first use in a daemon thread."""
        import asyncio

        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="outlast-client", daemon=True).start()
            return self._loop

    # -- events and runs -----------------------------------------------------------------------

    async def send_async(self, events: EventInput) -> list[str]:
        """Store events (validated first: a bad one stores nothing) and return their ids."""
        engine = await self.engine_async()
        return await engine.send(events)

    def send(self, events: EventInput) -> list[str]:
        trace = current_trace()  # the caller's span, if it traces: the client's loop runs in another thread

        async def send() -> list[str]:
            engine = await self.engine_async()
            return await engine.send(events, trace=trace)

        return self._call(send)

    async def get_run_async(self, run_id: str) -> Run | None:
        engine = await self.engine_async()
        return await engine.store.get_run(run_id)

    def get_run(self, run_id: str) -> Run | None:
        return self._call(lambda: self.get_run_async(run_id))

    async def list_runs_async(
        self,
        *,
        function_id: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        engine = await self.engine_async()
        return await engine.store.list_runs(
            RunFilter(app_id=self.id, function_id=function_id, status=status, event_id=event_id, limit=limit)
        )

    def list_runs(
        self,
        *,
        function_id: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Run]:
        return self._call(
            lambda: self.list_runs_async(function_id=function_id, status=status, event_id=event_id, limit=limit)
        )

    async def cancel_run_async(self, run_id: str) -> bool:
        """Cancel an active run; it stops at its next step boundary. False if not active."""
        engine = await self.engine_async()
        return await engine.cancel_run(run_id)

    def cancel_run(self, run_id: str) -> bool:
        return self._call(lambda: self.cancel_run_async(run_id))

    def subscribe(self, channel: str, *, topics: list[str] | None = None, since: int | None = None) -> Subscribing:
        """Realtime messages of `channel` (with one of `topics`): `async with app.subscribe(...) as
        messages: async for m in messages`. From the newest on, or after message id `since`."""
        from outlast.runtime.realtime import Subscribing

        async def hub() -> Hub:
            return await (await self.engine_async()).realtime()

        return Subscribing(hub, channel, topics=topics, since=since)

    # -- signals and paused functions ---------------------------------------------------------

    async def send_signal_async(
        self, signal: str, data: dict[str, Any] | None = None, *, hold: Any = None
    ) -> str | None:
        """Resume the run waiting on `signal` with `data`; return its id, or None when no run
        waits (the signal is dropped, or kept for `hold`, e.g. "10m", for the first wait to begin)."""
        engine = await self.engine_async()
        return await engine.send_signal(signal, data, hold=hold)

    def send_signal(self, signal: str, data: dict[str, Any] | None = None, *, hold: Any = None) -> str | None:
        return self._call(lambda: self.send_signal_async(signal, data, hold=hold))

    async def pause_function_async(self, function: Function | str) -> bool:
        """Pause a function of this app (a `Function` or its id): its events and cron ticks start
        no run (each is recorded `skipped`, reason "paused") and its runs in flight run no step
        until it is resumed. Shared by every worker, kept across restarts. True if it was running."""
        engine = await self.engine_async()
        return await engine.set_paused(self.id, _function_id(function), paused=True)

    def pause_function(self, function: Function | str) -> bool:
        return self._call(lambda: self.pause_function_async(function))

    async def resume_function_async(self, function: Function | str) -> bool:
        """Resume a paused function: its waiting runs go on. True if it was paused."""
        engine = await self.engine_async()
        return await engine.set_paused(self.id, _function_id(function), paused=False)

    def resume_function(self, function: Function | str) -> bool:
        return self._call(lambda: self.resume_function_async(function))

    async def replay_async(
        self, *, function_id: str, status: str = "failed", since: Any = None, until: Any = None
    ) -> int:
        """Rerun the runs of a function with `status` (failed by default; a paused function's
        `skipped` runs too) created between `since` and `until` (datetimes or ms); how many."""
        from outlast.runtime.replay import replay

        engine = await self.engine_async()
        return await replay(engine, app_id=self.id, function_id=function_id, status=status, since=since, until=until)

    def replay(self, *, function_id: str, status: str = "failed", since: Any = None, until: Any = None) -> int:
        return self._call(lambda: self.replay_async(function_id=function_id, status=status, since=since, until=until))

    # -- run handles and managing runs (API.md, "Managing runs from Python") -------------------

    async def invoke_async(
        self, function: Function | str, data: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunHandle:
        """Start a run of one of this app's functions now, with `data` as its event's data. With
        `id`, idempotent: a second invoke with that id within 24 h starts nothing and returns a
        handle on the first's run."""
        from outlast.runtime.invoke import invoke_run

        engine = await self.engine_async()
        return self.run_handle(await invoke_run(engine, self.id, _function_id(function), data, id=id))

    def invoke(
        self, function: Function | str, data: dict[str, Any] | None = None, *, id: str | None = None
    ) -> RunHandle:
        return self._call(lambda: self.invoke_async(function, data, id=id))

    def run_handle(self, run_id: str) -> RunHandle:
        """A handle on any run of the store (an unknown id fails when the handle reads it)."""
        from outlast.runtime.run_results import RunHandle

        return RunHandle(run_id, engine=self.engine_async, blocking=self._call)

    async def rerun_async(self, run_id: str, *, from_step: str | None = None, output: Any = _UNSET) -> RunHandle:
        """As `outlast rerun`: a new run of an ended run's function from its events, keeping the
        memo before `from_step`, whose output is replaced when `output` is given."""
        from outlast.runtime.rerun import UNSET, rerun

        engine = await self.engine_async()
        new_id = await rerun(engine, run_id, from_step=from_step, output=UNSET if output is _UNSET else output)
        return self.run_handle(new_id)

    def rerun(self, run_id: str, *, from_step: str | None = None, output: Any = _UNSET) -> RunHandle:
        return self._call(lambda: self.rerun_async(run_id, from_step=from_step, output=output))

    async def cancel_runs_async(
        self, *, function_id: str, if_: str | None = None, since: Any = None, until: Any = None
    ) -> int:
        """Cancel the active runs of a function created between `since` and `until` (datetimes
        or ms; until defaults to now) whose trigger event matches `if_` (CEL); how many."""
        from outlast.runtime.bulk_cancel import cancel_runs

        engine = await self.engine_async()
        return await cancel_runs(engine, app_id=self.id, function_id=function_id, if_=if_, since=since, until=until)

    def cancel_runs(self, *, function_id: str, if_: str | None = None, since: Any = None, until: Any = None) -> int:
        return self._call(lambda: self.cancel_runs_async(function_id=function_id, if_=if_, since=since, until=until))

    async def close_async(self) -> None:
        if self._engine is not None:
            await self._engine.close()
            self._engine = None

    def close(self) -> None:
        if self._engine is not None:
            self._call(self.close_async)


def _function_id(function: Function | str) -> str:
    if isinstance(function, Function):
        return function.id
    if isinstance(function, str) and function:
        return function
    raise OutlastError(f"expected a Function or a function id, got {function!r}")
