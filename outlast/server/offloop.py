"""Reads run off the event loop that takes events in.

The server's event loop answers the event API (`POST /e/{key}`), SDK syncs and checkpoints, and in
`outlast dev`/`start` it runs the workers too. A read can hold a loop for seconds of pure Python (a
page of a run with thousands of steps, a large GraphQL answer, their JSON), and a loop that is
busy answers nothing else. So reads (GET and HEAD requests, and GraphQL queries, which only read)
are served on a second event loop in its own thread, shared by every app of this process; their
request and response messages cross back to the server's loop. The interpreter lock still lets the
server's loop run between the read's slices (every few milliseconds), so an event is taken in while
a heavy read goes on. The store takes calls from any loop.

Kept on the server's loop: the live update and realtime streams (`/api/stream`, `/api/realtime`,
`/v1/realtime/sse`: their waiters belong to that loop)
and `/health` and `/ready` (they must say how that loop is doing).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")
ON_SERVER_LOOP = frozenset({"/api/stream", "/api/realtime", "/v1/realtime/sse", "/health", "/ready"})
READ_POSTS = frozenset({"/v0/gql"})

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


class ReadsOffTheLoop:
    """ASGI middleware: reads are served on the reads loop, everything else where it arrived."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_read(scope):
            await self.app(scope, receive, send)
            return
        server = asyncio.get_running_loop()

        async def receive_there() -> Message:
            return await _on(server, receive())

        async def send_there(message: Message) -> None:
            await _on(server, send(message))

        done: Future[None] = asyncio.run_coroutine_threadsafe(
            _awaited(self.app(scope, receive_there, send_there)), reads_loop()
        )
        try:
            await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            done.cancel()
            raise


def is_read(scope: Scope) -> bool:
    if scope["type"] != "http":
        return False
    method, path = scope["method"], scope["path"]
    return (method in ("GET", "HEAD") and path not in ON_SERVER_LOOP) or (method == "POST" and path in READ_POSTS)


async def _on(loop: asyncio.AbstractEventLoop, work: Awaitable[T]) -> T:
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_awaited(work), loop))


async def _awaited(work: Awaitable[T]) -> T:
    return await work


def reads_loop() -> asyncio.AbstractEventLoop:
    """The process's reads loop, started on first use (a daemon thread: it ends with the process)."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="outlast-reads", daemon=True).start()
            _loop = loop
        return _loop
