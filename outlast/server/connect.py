"""Inngest Connect, the server's side: `POST /v0/connect/start` and the WebSocket gateway.

A worker on an official SDK (`inngest/connect`, `inngest[connect]`) first POSTs a protobuf
`StartRequest` to `/v0/connect/start` (in production with the bearer form of the signing key,
refused with 401 without it) and gets a connection id, the gateway URL and a session token.
It then opens the gateway (`ws://<host>:<port>/v0/connect`, subprotocol
`v0.connect.inngest.com`) and the conversation goes:

    gateway: GATEWAY_HELLO           worker: WORKER_CONNECT (token, apps and their functions)
    gateway: GATEWAY_CONNECTION_READY (heartbeat and lease intervals) -- the apps are synced
    then, any number of times:
    gateway: GATEWAY_EXECUTOR_REQUEST      worker: WORKER_REQUEST_ACK, WORKER_REQUEST_EXTEND_LEASE...,
    gateway: WORKER_REQUEST_EXTEND_LEASE_ACK, ...  worker: WORKER_REPLY   gateway: WORKER_REPLY_ACK
    worker: WORKER_HEARTBEAT               gateway: GATEWAY_HEARTBEAT
    worker: WORKER_PAUSE (drain: no new requests; in-flight ones finish)

Apps sync over the connection exactly as by `POST /fn/register` (`register_app`), their functions
stored with the `connect` runtime so the Connect driver (`outlast.runtime.drivers.connect`) runs
them. Bad input — a frame that is text, oversized, malformed or of an unknown type, a wrong
token, a sync that fails, a worker silent past three heartbeat intervals — closes that one
connection with a logged reason (and the reason in the close frame); other workers are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Any
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from outlast.core.ids import new_ulid
from outlast.core.models import WorkerInfo
from outlast.errors import FunctionConfigError, StoreError
from outlast.protocol import connect as wire
from outlast.protocol.sync import SyncError, SyncRequest, parse_register
from outlast.runtime.drivers.connect import ConnectDriver, Connection
from outlast.runtime.synced_apps import register_app
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.gateway import Gateway, worker_ids
from outlast.server.services import Services, services

log = logging.getLogger("outlast.connect")

MAX_START_BYTES = 64 * 1024
#: a worker silent this many heartbeat intervals is gone
MISSED_HEARTBEATS = 3
#: the stored count of a connection's requests in flight lags by at most this (plus a write)
IN_FLIGHT_WRITE_S = 0.2
#: WebSocket close codes (RFC 6455)
POLICY_VIOLATION, UNSUPPORTED, TOO_BIG, GOING_AWAY = 1008, 1003, 1009, 1001


async def start(request: Request) -> Response:
    found = services(request)
    refusal = found.bearer.refusal(request, what="Connect (/v0/connect/start)")
    if refusal is not None:
        log.warning("Connect: refused a worker from %s: %s", _peer(request), refusal)
        return JSONResponse({"error": refusal}, status_code=401)
    if found.connect.driver is None:
        return JSONResponse({"error": "Connect is not enabled: pip install 'outlast[connect]'"}, status_code=501)
    try:
        wire.parse("StartRequest", await read_body(request, MAX_START_BYTES))
    except BodyTooLargeError as exc:
        return JSONResponse({"error": f"connect start {exc}"}, status_code=413)
    except wire.FrameError as exc:
        return JSONResponse({"error": f"connect start: {exc}"}, status_code=400)
    connection_id = new_ulid()
    token = found.connect.sessions.issue(connection_id)
    reply = wire.pb().StartResponse(
        connection_id=connection_id,
        gateway_endpoint=gateway_url(request, port=found.connect.port),
        gateway_group="outlast",
        session_token=token,
        sync_token=token,
    )
    return Response(reply.SerializeToString(), media_type="application/protobuf")


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "?"


def gateway_url(request: Request, *, port: int | None) -> str:
    """The gateway at the host the worker reached this server by (its Host header), on the
    gateway's own `port` when there is one; over TLS (a proxy in front), at the very address."""
    url = request.url
    if url.scheme == "https":
        return str(url.replace(scheme="wss", path=wire.GATEWAY_PATH, query=""))
    if port is not None:
        url = url.replace(port=port)
    return str(url.replace(scheme="ws", path=wire.GATEWAY_PATH, query=""))


async def gateway(ws: WebSocket) -> None:
    found: Services = ws.app.state.services
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=wire.SUBPROTOCOL if wire.SUBPROTOCOL in offered else None)
    driver = found.connect.driver
    if driver is None:
        await _close(ws, POLICY_VIOLATION, "Connect is not enabled on this server")
        return
    await Session(found, driver, ws).run()


class CloseConnectionError(Exception):
    """Close the connection with `code` for `reason` (logged)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


class Session:
    """One worker's connection, from hello to close."""

    def __init__(self, found: Services, driver: ConnectDriver, ws: WebSocket) -> None:
        self.services, self.driver, self.ws = found, driver, ws
        self.gateway: Gateway = found.connect
        self.connection: Connection | None = None
        #: each app's function ids, as the connection synced them
        self.functions: dict[str, list[str]] = {}
        self.peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
        #: why the connection ended, for the log and for requests it had in flight
        self.closed_for = "the worker closed the connection"
        #: keeps the stored in-flight count fresh (`report_in_flight`)
        self.reporter: asyncio.Task[None] | None = None

    async def run(self) -> None:
        code = 1000
        try:
            await self.say("GATEWAY_HELLO")
            await self.handshake()
            while True:
                await self.handle(*await self.receive(wire.HEARTBEAT_INTERVAL_S * MISSED_HEARTBEATS))
        except CloseConnectionError as exc:
            self.closed_for, code = str(exc), exc.code
            self.gateway.counts["closed_bad_input"] += 1
            log.warning("Connect: closing connection %s from %s: %s", self._id(), self.peer, self.closed_for)
            await _close(self.ws, code, self.closed_for)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the worker went away (a RuntimeError is a send after its close)
        except asyncio.CancelledError:
            self.closed_for = "the server is shutting down"
            raise
        finally:
            if self.reporter is not None:
                self.reporter.cancel()
            if self.connection is not None:
                self.driver.dropped(self.connection.id, self.closed_for)
                await self.forget()
                log.info("Connect: connection %s closed: %s", self.connection.id, self.closed_for)

    def _id(self) -> str:
        return self.connection.id if self.connection else "(before WORKER_CONNECT)"

    async def receive(self, timeout_s: float) -> tuple[str, bytes]:
        try:
            async with asyncio.timeout(timeout_s):  # not wait_for: no task per message
                message = await self.ws.receive()
        except TimeoutError:
            raise CloseConnectionError(POLICY_VIOLATION, f"the worker sent nothing for {timeout_s:g}s") from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        data = message.get("bytes")
        try:
            kind, payload = wire.parse_frame(data if data is not None else message.get("text") or "")
        except wire.FrameError as exc:
            code = TOO_BIG if "limit" in str(exc) else UNSUPPORTED
            raise CloseConnectionError(code, f"the worker sent {exc}") from None
        self.gateway.counts[f"received:{kind}"] += 1
        return kind, payload

    async def say(self, kind: str, payload: Any = None) -> None:
        await self.send(wire.frame(kind, payload))
        self.gateway.counts[f"sent:{kind}"] += 1

    # -- the handshake ---------------------------------------------------------------------------

    async def handshake(self) -> None:
        kind, payload = await self.receive(self.driver.ack_timeout_s)
        if kind != "WORKER_CONNECT":
            raise CloseConnectionError(POLICY_VIOLATION, f"expected WORKER_CONNECT after GATEWAY_HELLO, got {kind}")
        hello = wire.parse("WorkerConnectRequestData", payload)
        problem = self.gateway.sessions.check(hello.connection_id, hello.auth_data.session_token)
        if problem is not None:
            raise CloseConnectionError(POLICY_VIOLATION, problem)
        if any(c == hello.connection_id for c in self.driver.connections):
            raise CloseConnectionError(POLICY_VIOLATION, f"connection {hello.connection_id} is already open")
        apps = [await self.sync(app, hello) for app in hello.apps]
        capacity = hello.max_worker_concurrency if hello.HasField("max_worker_concurrency") else 0
        now = self.services.engine.clock.now_ms()
        self.connection = Connection(
            id=hello.connection_id,
            link=self,
            app_ids=frozenset(apps),
            instance_id=hello.instance_id,
            sdk=wire.sdk_name(hello.sdk_language, hello.sdk_version),
            sdk_language=hello.sdk_language,
            sdk_version=hello.sdk_version.removeprefix("v"),
            capacity=capacity if capacity > 0 else None,
            connected_at_ms=now,
            last_heartbeat_ms=now,
        )
        ready = wire.pb().GatewayConnectionReadyData(
            heartbeat_interval=f"{wire.HEARTBEAT_INTERVAL_S}s", extend_lease_interval=f"{wire.EXTEND_LEASE_INTERVAL_S}s"
        )
        await self.say("GATEWAY_CONNECTION_READY", ready)  # before any request: the SDKs expect it first
        self.driver.connected(self.connection)
        self.gateway.counts["connections"] += 1
        self.functions = {app: sorted(c.id for c in self.services.engine.registry.apps().get(app, ())) for app in apps}
        await self.announce()
        self.reporter = asyncio.create_task(self.report_in_flight())
        port = (self.ws.scope.get("server") or ("", 0))[1]
        log.info(
            "Connect: worker %s (%s) connected apps %s on port %s",
            *(self.connection.id, self.connection.sdk, sorted(apps), port),
        )

    async def sync(self, app: Any, hello: Any) -> str:
        """Sync one app of a WORKER_CONNECT; its id. A refused sync closes the connection."""
        try:
            request = parse_register(
                wire.sync_payload(app, sdk_language=hello.sdk_language, sdk_version=hello.sdk_version)
            )
            await register_app(self.services.engine, _over_connect(request))
        except (FunctionConfigError, SyncError, ValueError) as exc:
            await self.say("SYNC_FAILED", wire.pb().SystemError(code="sync_failed", message=str(exc)))
            raise CloseConnectionError(POLICY_VIOLATION, f"app {app.app_name!r} could not be synced: {exc}") from None
        except StoreError as exc:
            raise CloseConnectionError(1011, f"the store is unavailable, reconnect later: {exc}") from None
        return request.app_id

    # -- visibility: a connection is a worker in `outlast workers`, /api/workers and the dashboard

    def _worker_ids(self) -> dict[str, str]:
        assert self.connection is not None
        return worker_ids(self.connection)

    async def announce(self) -> None:
        """Record the connection as a live worker of each of its apps (in the store, so that every
        server process and the CLI see it); a store that cannot be written is logged, not fatal."""
        c = self.connection
        assert c is not None
        try:
            for app, worker_id in self._worker_ids().items():
                await self.services.engine.store.heartbeat(
                    WorkerInfo(
                        id=worker_id,
                        app_id=app,
                        host=f"{c.instance_id} via Connect from {self.peer}",
                        pid=0,
                        started_at=c.connected_at_ms,
                        heartbeat_at=c.last_heartbeat_ms,
                        functions=self.functions.get(app, []),
                        in_flight=len(c.in_flight),
                        sdk=c.sdk_language or "unknown",
                        sdk_version=c.sdk_version or None,
                        capacity=c.capacity,
                    )
                )
        except StoreError as exc:
            log.warning("Connect: could not record connection %s as a worker: %s", c.id, exc)

    async def report_in_flight(self) -> None:
        """Write the connection's requests in flight to the store when they change, at most one
        write per `IN_FLIGHT_WRITE_S` (a burst of requests is one write), so every process and
        `outlast workers` see them live rather than as of the last heartbeat."""
        c = self.connection
        assert c is not None
        stored = len(c.in_flight)
        while True:
            while len(c.in_flight) == stored:
                await self.driver.until_changed()
            await asyncio.sleep(IN_FLIGHT_WRITE_S)
            stored = len(c.in_flight)
            await self.announce()

    async def forget(self) -> None:
        try:
            for worker_id in self._worker_ids().values():
                await self.services.engine.store.forget_worker(worker_id)
        except StoreError as exc:
            log.warning("Connect: could not forget connection %s: %s", self._id(), exc)

    # -- after the handshake ---------------------------------------------------------------------

    async def handle(self, kind: str, payload: bytes) -> None:
        connection = self.connection
        assert connection is not None
        m = wire.pb()
        if kind == "WORKER_HEARTBEAT":
            connection.last_heartbeat_ms = self.services.engine.clock.now_ms()
            await self.say("GATEWAY_HEARTBEAT")
            await self.announce()
        elif kind == "WORKER_REQUEST_ACK":
            self.driver.acked(connection.id, wire.parse("WorkerRequestAckData", payload).request_id)
        elif kind == "WORKER_REQUEST_EXTEND_LEASE":
            extend = wire.parse("WorkerRequestExtendLeaseData", payload)
            ack = m.WorkerRequestExtendLeaseAckData(request_id=extend.request_id, app_id=extend.app_id)
            if self.driver.in_flight(connection.id, extend.request_id):
                ack.new_lease_id = new_ulid()  # no lease id means: stop, the request is gone
            await self.say("WORKER_REQUEST_EXTEND_LEASE_ACK", ack)
        elif kind == "WORKER_REPLY":
            reply = wire.parse("SDKResponse", payload)
            if not self.driver.replied(reply.request_id, reply):
                log.info("Connect: a late reply to request %s from %s was dropped", reply.request_id, connection.id)
            await self.say("WORKER_REPLY_ACK", m.WorkerReplyAckData(request_id=reply.request_id))
        elif kind == "WORKER_PAUSE":
            connection.draining = True
            self.driver.changed()  # requests waiting for room look again
        elif kind != "WORKER_READY":
            raise CloseConnectionError(POLICY_VIOLATION, f"the worker sent {kind}, which only a gateway sends")

    # -- Link (the Connect driver sends requests and closes through these) -----------------------

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(data)

    async def close(self, reason: str) -> None:
        log.warning("Connect: closing connection %s: %s", self._id(), reason)
        self.closed_for = reason
        await _close(self.ws, POLICY_VIOLATION, reason)


def _over_connect(request: SyncRequest) -> SyncRequest:
    """The synced functions run over the connection: their runtime names the app and function."""
    functions = [
        dataclasses.replace(
            fn,
            runtime=dataclasses.replace(
                fn.runtime, kind="connect", url=f"{request.url}?{urlparse(fn.runtime.url or '').query}"
            ),
        )
        for fn in request.functions
    ]
    return dataclasses.replace(request, functions=functions)


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(RuntimeError):  # already closed
        await ws.close(code, reason.encode()[:120].decode(errors="ignore"))


async def flush(request: Request) -> Response:
    """`POST /v0/connect/flush`: a reply the worker could not see acknowledged, sent over HTTP."""
    found = services(request)
    refusal = found.bearer.refusal(request, what="Connect (/v0/connect/flush)")
    if refusal is not None:
        log.warning("Connect: refused a flushed reply from %s: %s", _peer(request), refusal)
        return JSONResponse({"error": refusal}, status_code=401)
    if found.connect.driver is None:
        return JSONResponse({"error": "Connect is not enabled: pip install 'outlast[connect]'"}, status_code=501)
    try:
        reply = wire.parse("SDKResponse", await read_body(request, wire.MAX_FRAME_BYTES))
    except BodyTooLargeError as exc:
        return JSONResponse({"error": f"connect flush {exc}"}, status_code=413)
    except wire.FrameError as exc:
        return JSONResponse({"error": f"connect flush: {exc}"}, status_code=400)
    found.connect.driver.replied(reply.request_id, reply)
    return Response(
        wire.pb().FlushResponse(request_id=reply.request_id).SerializeToString(), media_type="application/protobuf"
    )


ROUTES: list[BaseRoute] = [
    Route("/v0/connect/start", start, methods=["POST"]),
    Route("/v0/connect/flush", flush, methods=["POST"]),
    WebSocketRoute(wire.GATEWAY_PATH, gateway),
]
