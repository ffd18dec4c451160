"""The Connect driver: a Connect app's functions, called over the worker's own WebSocket.

Why the HTTP driver over a connection, not a driver of its own: a Connect worker runs exactly
the request an HTTP-served app would receive (the same JSON body, `fnId` and `stepId`) and
answers exactly what it would have answered (status DONE/NOT_COMPLETED/ERROR for 200/206/500,
the same body and retry hints). So `ConnectDriver` is an `HttpDriver` whose one request
(`call`) travels as a `GATEWAY_EXECUTOR_REQUEST` on a live connection of the app instead of a
POST; the attempt's conversation (discovery, planned steps, retries, commits through
`host.apply`) is `HttpAttempt`'s, unchanged, so one run means the same however its app is served.

Connections are the gateway's (`outlast.server.connect`); it adds and drops them here, and hands
in what workers send (`acked`, `replied`). A request goes to the live connection of its app
with capacity (the SDK's `maxWorkerConcurrency`) and the fewest requests in flight; a draining
connection (the worker sent `WORKER_PAUSE`) gets none. A request is failed as a transport error,
never left hanging, when its worker does not acknowledge it in time (the connection is closed,
saying so), does not answer within the request timeout, or drops: the executor's retry policy
then sends it again, to any connection. Nothing here writes to the store, so a reply that never
arrived commits nothing: a step is never committed twice, though its body may run twice
(at-least-once bodies, as over HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

from outlast.core.ops import FunctionError
from outlast.core.retry import ErrorInfo
from outlast.protocol import connect as wire
from outlast.protocol.reply import Reply, parse_reply
from outlast.runtime.drivers.http import DEFAULT_REQUEST_TIMEOUT_S, HttpDriver

log = logging.getLogger("outlast.connect")

#: a worker must acknowledge a request this soon (the SDKs do before running it)
ACK_TIMEOUT_S = 10.0
#: a request waits this long for a connection of its app with capacity (a worker reconnecting)
CONNECTION_WAIT_S = 5.0


class Link(Protocol):
    """The gateway's side of one worker's WebSocket."""

    async def send(self, data: bytes) -> None: ...

    async def close(self, reason: str) -> None: ...


class ConnectionLostError(Exception):
    """The connection closed before the worker replied."""


@dataclass(slots=True)
class Pending:
    connection_id: str
    reply: asyncio.Future[Any]
    #: done when the worker acknowledged the request (futures, not events: waiting on them
    #: takes no task of its own, which one step's latency notices)
    acked: asyncio.Future[None]

    def __post_init__(self) -> None:
        # a drop fails the reply even when the request already gave up waiting for it
        self.reply.add_done_callback(lambda f: f.cancelled() or f.exception())

    def ack(self) -> None:
        if not self.acked.done():
            self.acked.set_result(None)


@dataclass(slots=True, kw_only=True)
class Connection:
    """One worker connection, as the gateway accepted it."""

    id: str
    link: Link
    app_ids: frozenset[str]
    instance_id: str
    #: `py:v0.5.19`, as logs and the SDK's own headers name it
    sdk: str
    #: the SDK's language and version apart (`py`, `0.5.19`), as the dashboard and CLI show them
    sdk_language: str = ""
    sdk_version: str = ""
    #: the SDK's maxWorkerConcurrency; None is unbounded
    capacity: int | None
    connected_at_ms: int
    last_heartbeat_ms: int
    draining: bool = False
    in_flight: dict[str, Pending] = field(default_factory=dict)
    requests: int = 0

    def has_room(self) -> bool:
        return not self.draining and (self.capacity is None or len(self.in_flight) < self.capacity)


class ConnectDriver(HttpDriver):
    """Runs Connect apps' functions on their workers' connections (see the module docstring)."""

    def __init__(
        self,
        *,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        connection_wait_s: float = CONNECTION_WAIT_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(request_timeout_s=request_timeout_s, wall_clock=wall_clock)
        self.ack_timeout_s = ack_timeout_s
        self.connection_wait_s = connection_wait_s
        self.connections: dict[str, Connection] = {}
        self._changed = asyncio.Event()
        #: called when a connection opens or closes (the engine's workers then claim anew)
        self.listeners: list[Callable[[], None]] = []

    # -- the gateway's side ----------------------------------------------------------------------

    def connected(self, connection: Connection) -> None:
        self.connections[connection.id] = connection
        self.changed()
        self._tell()

    def dropped(self, connection_id: str, reason: str) -> None:
        """The connection is gone: fail what it had in flight (the executor retries it elsewhere)."""
        connection = self.connections.pop(connection_id, None)
        if connection is None:
            return
        for request_id, pending in list(connection.in_flight.items()):
            if not pending.reply.done():
                pending.reply.set_exception(ConnectionLostError(reason))
            connection.in_flight.pop(request_id, None)
        self.changed()
        self._tell()

    async def drain(self) -> None:
        """The server is stopping: send no more requests and tell every worker (`GATEWAY_CLOSING`),
        so it reconnects, to another server process when there is one. Replies to requests in
        flight are still taken, on whichever connection of the worker they arrive (see `replied`)."""
        closing = wire.frame("GATEWAY_CLOSING")
        for connection in list(self.connections.values()):
            connection.draining = True
            with contextlib.suppress(Exception):  # a worker already gone is dropped by the gateway
                await connection.link.send(closing)
        self.changed()
        self._tell()

    def acked(self, connection_id: str, request_id: str) -> None:
        pending = self._pending(connection_id, request_id)
        if pending is not None:
            pending.ack()

    def replied(self, request_id: str, response: Any) -> bool:
        """Deliver a worker's `SDKResponse` (over its connection, or flushed over HTTP); False when
        no request waits for it any more (it timed out, or its connection dropped)."""
        for connection in self.connections.values():
            pending = connection.in_flight.get(request_id)
            if pending is not None and not pending.reply.done():
                pending.ack()
                pending.reply.set_result(response)
                return True
        return False

    def serves(self, app_id: str) -> bool:
        """Whether a worker of `app_id` is connected here (`Connected`: its runs are claimed here)."""
        return any(app_id in c.app_ids and not c.draining for c in self.connections.values())

    def in_flight(self, connection_id: str, request_id: str) -> bool:
        return self._pending(connection_id, request_id) is not None

    def _pending(self, connection_id: str, request_id: str) -> Pending | None:
        connection = self.connections.get(connection_id)
        return None if connection is None else connection.in_flight.get(request_id)

    def changed(self) -> None:
        """Connections or their room changed: wake requests waiting for one."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def until_changed(self) -> None:
        """Until connections or the requests in flight on them next change."""
        await self._changed.wait()

    def _tell(self) -> None:
        for listener in self.listeners:
            listener()

    # -- the executor's side ---------------------------------------------------------------------

    async def call(self, url: str, body: bytes, *, run_id: str, step: str, now_ms: int) -> Reply:
        """Send one call request to a worker of the app and wait for its reply."""
        parsed = urlparse(url)
        app_id, slug = wire.app_of(url), (parse_qs(parsed.query).get("fnId") or [""])[0]
        connection = await self._pick(app_id)
        if connection is None:
            return _unreachable(app_id, self.connection_wait_s)
        request_id = uuid.uuid4().hex
        m = wire.pb()
        request = m.GatewayExecutorRequestData(
            request_id=request_id,
            app_id=app_id,
            app_name=app_id,
            function_id=slug,
            function_slug=slug,
            step_id=step,
            request_payload=body,
            run_id=run_id,
            lease_id=uuid.uuid4().hex,
        )
        loop = asyncio.get_running_loop()
        pending = Pending(connection_id=connection.id, reply=loop.create_future(), acked=loop.create_future())
        connection.in_flight[request_id] = pending
        connection.requests += 1
        self.changed()
        try:
            response = await self._exchange(connection, pending, wire.frame("GATEWAY_EXECUTOR_REQUEST", request))
        except ConnectionLostError as exc:
            return _lost(connection.id, str(exc))
        except TimeoutError:
            return _transport(
                connection.id,
                "SDKTimeoutError",
                f"did not answer within the request timeout ({self.request_timeout_s:g}s)",
            )
        finally:
            connection.in_flight.pop(request_id, None)
            self.changed()
        status, headers, reply_body = wire.http_reply(response)
        return parse_reply(status, headers, reply_body, now_ms=now_ms, url=f"Connect worker {connection.id}")

    async def _exchange(self, connection: Connection, pending: Pending, request: bytes) -> Any:
        try:
            await connection.link.send(request)
        except Exception as exc:  # the socket closed under us: the gateway drops it too
            raise ConnectionLostError(f"sending the request failed ({exc or type(exc).__name__})") from None
        acked_or_replied, _ = await asyncio.wait(
            (pending.acked, pending.reply), timeout=self.ack_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if not acked_or_replied:
            reason = f"the worker did not acknowledge a request within {self.ack_timeout_s:g}s"
            await connection.link.close(reason)
            self.dropped(connection.id, reason)
            raise ConnectionLostError(reason)
        async with asyncio.timeout(self.request_timeout_s):  # awaits the future itself: no task
            return await pending.reply

    async def _pick(self, app_id: str) -> Connection | None:
        """The app's connection with room and the least in flight; waits a while for one."""
        deadline = asyncio.get_running_loop().time() + self.connection_wait_s
        while True:
            ready = [c for c in self.connections.values() if app_id in c.app_ids and c.has_room()]
            if ready:
                return min(ready, key=lambda c: (len(c.in_flight), c.requests))
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return None


def _transport(connection_id: str, name: str, problem: str) -> FunctionError:
    return FunctionError(error=ErrorInfo(name=name, message=f"Connect worker {connection_id} {problem}"))


def _lost(connection_id: str, reason: str) -> FunctionError:
    return _transport(connection_id, "SDKConnectionError", f"disconnected before replying ({reason})")


def _unreachable(app_id: str, waited_s: float) -> FunctionError:
    return FunctionError(
        error=ErrorInfo(
            name="SDKUnreachableError",
            message=f"no Connect worker of app {app_id!r} with free capacity was connected (waited {waited_s:g}s)",
        )
    )


__all__ = ["ConnectDriver", "Connection", "ConnectionLostError", "Link"]
