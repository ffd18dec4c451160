"""The worker's matcher: events left for expression waits are matched here, after their ingest
(`Store.match_expression_waits`), so evaluating thousands of expressions never holds up the
ingest of other events.

It looks when this process left new events for such waits (`Store.expression_checks` changed:
no read otherwise), when another process's commit woke the worker (it may have left some), and
at each poll interval (a missed wake-up costs at most that). Once it resumed runs it wakes the
engine: a store does not announce its own commits to its own process (`Store.add_listener`).
`drain` (the test engine) matches before each claim, so a run an event resumes is claimed in
the same drain.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from outlast.errors import StoreError

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

log = logging.getLogger("outlast.worker")
#: wake-ups tell of new work; the poll (this many poll intervals) is only a safety net
POLL_FACTOR = 10


class Matcher:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        #: another process woke us since the last pass
        self.others = False
        self._seen = -1
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """A commit happened (maybe in another thread): look again if there may be something new."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        if not self.others and self.engine.store.expression_checks() == self._seen:
            return  # nothing new: spare the loop a turn (this runs at every commit that wakes workers)
        if asyncio._get_running_loop() is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        poll = self.engine.settings.poll_interval_ms / 1000 * POLL_FACTOR
        new_only = False
        while not stop.is_set():
            try:
                await self.match(new_only=new_only)
            except StoreError as exc:
                log.warning("matching events to expression waits failed, retrying: %s", exc)
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            done, _ = await asyncio.wait(waiters, timeout=poll, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            new_only = bool(done)  # woken: only if something is new; the poll looks anyway

    async def match(self, *, new_only: bool) -> None:
        """Match every event left so far; with `new_only`, only if this process left a new one
        or another process woke us since the last pass."""
        store = self.engine.store
        recorded = store.expression_checks()
        if new_only and recorded == self._seen and not self.others:
            return
        self._seen, self.others = recorded, False
        matched = 0
        while n := await store.match_expression_waits(self.engine.clock.now_ms()):
            matched += n
        if matched:
            self.engine.wake()  # runs it resumed are due: this process's workers hear it here
