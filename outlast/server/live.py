"""Live updates for the dashboard, by server-sent events (`GET /api/stream`).

Two sources: the engine's bus (attempts of this process's workers, at once) and a poll of the
store once a second while anyone listens (work done by other processes: workers elsewhere, the
CLI). The poll reads the newest runs' ids and statuses (a primary-key range) and, for each run a
page is watching, its status and step count. Listeners get a small JSON message saying what
changed; pages then fetch what they show again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from outlast.core.models import RunFilter
from outlast.core.observe import AttemptEnded, AttemptStarted, Observation, StepEnded
from outlast.errors import StoreError
from outlast.runtime.engine import Engine

POLL_S = 1.0
KEEPALIVE_S = 15.0
_NEWEST = 50
_QUEUE = 100


class Listener:
    def __init__(self, run_id: str | None) -> None:
        self.run_id = run_id
        self.queue: asyncio.Queue[dict[str, object]] = asyncio.Queue(_QUEUE)

    def put(self, message: dict[str, object]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a slow reader misses messages, not the process
            self.queue.put_nowait(message)


class Live:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.listeners: set[Listener] = set()
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._newest: list[tuple[str, str]] | None = None
        self._watched: dict[str, tuple[object, ...]] = {}
        engine.bus.subscribe(self._observe)

    # -- listening -----------------------------------------------------------------------------

    async def stream(self, run_id: str | None) -> AsyncIterator[str]:
        """SSE lines for one listener until it goes away."""
        listener = Listener(run_id)
        self.listeners.add(listener)
        self._loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(listener.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield f"data: {json.dumps(message)}\n\n"
        finally:
            self.listeners.discard(listener)

    def publish(self, message: dict[str, object]) -> None:
        run_id = message.get("run_id")
        for listener in list(self.listeners):
            if listener.run_id is None or listener.run_id == run_id:
                listener.put(message)

    def _observe(self, o: Observation) -> None:
        if not self.listeners or self._loop is None:
            return
        message: dict[str, object]
        if isinstance(o, AttemptStarted):
            message = {"kind": "run", "run_id": o.run_id, "function_id": o.function_id, "status": "running"}
        elif isinstance(o, AttemptEnded):
            message = {"kind": "run", "run_id": o.run_id, "function_id": o.function_id, "status": o.outcome}
        elif isinstance(o, StepEnded):
            message = {
                "kind": "step",
                "run_id": o.run_id,
                "function_id": o.function_id,
                "step_id": o.step_id,
                "status": o.status,
            }
        else:
            return
        self._loop.call_soon_threadsafe(self.publish, message)

    # -- polling the store ---------------------------------------------------------------------

    async def _poll(self) -> None:
        while self.listeners:
            with contextlib.suppress(StoreError):  # the next round tries again
                await self._poll_once()
            await asyncio.sleep(POLL_S)
        self._newest = None
        self._watched.clear()

    async def _poll_once(self) -> None:
        reads = self.engine.reads
        newest = [(r.id, r.status) for r in await reads.list_runs(RunFilter(limit=_NEWEST))]
        if self._newest is not None and newest != self._newest:
            self.publish({"kind": "runs"})
        self._newest = newest
        watched = {listener.run_id for listener in self.listeners if listener.run_id}
        for run_id in watched:
            run = await reads.get_run(run_id)
            state = (None,) if run is None else (run.status, len(run.steps), tuple(s.status for s in run.steps))
            if run_id in self._watched and self._watched[run_id] != state:
                self.publish({"kind": "run", "run_id": run_id, "status": run.status if run else None})
            self._watched[run_id] = state
        for run_id in set(self._watched) - watched:
            del self._watched[run_id]
