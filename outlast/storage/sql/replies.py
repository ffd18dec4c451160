"""Answering many waiting callers from a database thread, cheaply.

Waking an event loop from another thread costs a syscall. A group commit may finish hundreds
of requests at once, so replies are delivered per loop in one wake-up, not one per request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """Where a request's result goes: an asyncio future on its loop, or a concurrent future."""

    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[Any] | Future[Any] | None = None

    @classmethod
    def for_running_loop(cls) -> Reply:
        loop = asyncio.get_running_loop()
        return cls(loop, loop.create_future())

    @classmethod
    def blocking(cls) -> Reply:
        return cls(None, Future())


@dataclass
class Outbox:
    """Results of one group, delivered when the group is done."""

    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def put(self, reply: Reply, ok: bool, value: Any) -> None:
        if reply.loop is None:
            future: Future[Any] = reply.future  # type: ignore[assignment]
            future.set_result(value) if ok else future.set_exception(value)
        else:
            self.by_loop[reply.loop].append((reply.future, ok, value))  # type: ignore[arg-type]

    def send(self) -> None:
        for loop, items in self.by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_deliver, items)
        self.by_loop.clear()


def _deliver(items: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in items:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
