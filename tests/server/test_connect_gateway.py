"""The Connect gateway against a worker that says exactly what a test wants (the official SDK's
protobuf messages over a real WebSocket on loopback): capacity is honoured, and bad input — a
malformed, text, oversized or unknown frame, a wrong session token, a worker that never
acknowledges — closes that one connection with a logged reason and leaves other workers alone."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from outlast.core.models import RunFilter
from outlast.protocol.signing import bearer_token
from outlast.runtime.drivers.connect import ConnectDriver
from outlast.runtime.engine import Engine
from outlast.server.mode import ServerConfig
from outlast.settings import Settings
from tests.conftest import PG_URL, pg_database
from tests.server.serving import serve

pb: Any = pytest.importorskip("inngest.connect._internal.connect_pb2")
APP = "raw-app"
SUBPROTOCOL = "v0.connect.inngest.com"
SIGNING_KEY, OTHER = "signkey-test-" + "5eed" * 16, "signkey-test-" + "baad" * 16


def message(kind: str, payload: Any = None) -> bytes:
    data = b"" if payload is None else payload.SerializeToString()
    return bytes(pb.ConnectMessage(kind=pb.GatewayMessageType.Value(kind), payload=data).SerializeToString())


def function(name: str) -> dict[str, Any]:
    url = f"wss://connect?fnId={APP}-{name}&step=step"
    return {
        "id": f"{APP}-{name}",
        "name": name,
        "triggers": [{"event": f"raw/{name}"}],
        "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "ws", "url": url}}},
    }


class RawWorker:
    def __init__(self, ws: Any, connection_id: str) -> None:
        self.ws, self.id = ws, connection_id

    async def receive(self) -> tuple[str, bytes]:
        parsed = pb.ConnectMessage.FromString(await self.ws.recv())
        return pb.GatewayMessageType.Name(parsed.kind), bytes(parsed.payload)

    async def receive_kind(self, kind: str) -> bytes:
        while True:
            got, payload = await self.receive()
            if got == kind:
                return payload

    async def closed(self) -> tuple[int, str]:
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await self.ws.recv()
        return self.ws.close_code, self.ws.close_reason


async def open_worker(
    base: str, *, capacity: int | None = None, token: str | None = None, key: str | None = None
) -> RawWorker:
    """A worker through the handshake up to WORKER_CONNECT (`key`: the signing key, production)."""
    headers = {"Authorization": f"Bearer {bearer_token(key)}"} if key else {}
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{base}/v0/connect/start", content=pb.StartRequest().SerializeToString(), headers=headers
        )
    assert reply.status_code == 200, reply.text
    start = pb.StartResponse.FromString(reply.content)
    assert start.gateway_endpoint == base.replace("http://", "ws://") + "/v0/connect"
    ws = await websockets.connect(start.gateway_endpoint, subprotocols=[websockets.Subprotocol(SUBPROTOCOL)])
    worker = RawWorker(ws, start.connection_id)
    assert (await worker.receive())[0] == "GATEWAY_HELLO"
    hello = pb.WorkerConnectRequestData(
        connection_id=start.connection_id,
        instance_id="raw",
        auth_data=pb.AuthData(session_token=token or start.session_token, sync_token=start.sync_token),
        apps=[pb.AppConfiguration(app_name=APP, functions=json.dumps([function("go")]).encode())],
        sdk_language="raw",
        sdk_version="0.0.1",
        max_worker_concurrency=capacity,
    )
    await ws.send(message("WORKER_CONNECT", hello))
    return worker


async def ready(base: str, **options: Any) -> RawWorker:
    worker = await open_worker(base, **options)
    payload = await worker.receive_kind("GATEWAY_CONNECTION_READY")
    assert pb.GatewayConnectionReadyData.FromString(payload).heartbeat_interval == "10s"
    return worker


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    async with serve(tmp_path, settings=Settings(poll_interval_ms=20, backoff_scale=0.001)) as served:
        yield served


async def still_served(worker: RawWorker) -> None:
    await worker.ws.send(message("WORKER_HEARTBEAT"))
    assert await worker.receive_kind("GATEWAY_HEARTBEAT") == b""


@pytest.mark.parametrize(
    ("frame", "code", "reason"),
    [
        (b"\xff\xff\xff", 1003, "a malformed frame"),
        ("hello", 1003, "a text frame"),
        (bytes(pb.ConnectMessage(kind=99).SerializeToString()), 1003, "an unknown message type (99)"),
        (message("GATEWAY_EXECUTOR_REQUEST"), 1008, "GATEWAY_EXECUTOR_REQUEST, which only a gateway sends"),
        (b"\x0a" * (9 * 1024 * 1024), 1009, "(the limit is"),
    ],
)
async def test_bad_input_closes_that_connection_only(
    server: tuple[str, Engine], caplog: pytest.LogCaptureFixture, frame: bytes | str, code: int, reason: str
) -> None:
    base, _ = server
    bad, good = await ready(base), await ready(base)
    with caplog.at_level(logging.WARNING, "outlast.connect"):
        await bad.ws.send(frame)
        closed_with, why = await bad.closed()
        assert closed_with == code and reason in why
    assert any(bad.id in r.getMessage() and reason in r.getMessage() for r in caplog.records)
    await still_served(good)


async def test_a_wrong_session_token_is_refused_and_syncs_nothing(
    server: tuple[str, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    base, engine = server
    with caplog.at_level(logging.WARNING, "outlast.connect"):
        worker = await open_worker(base, token="1999999999.forged")
        code, reason = await worker.closed()
    assert code == 1008 and "session token was not issued" in reason
    assert any("session token was not issued" in r.getMessage() for r in caplog.records)
    assert await engine.reads.get_app(APP) is None


async def test_a_wrong_key_is_refused_with_a_logged_reason(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = ServerConfig(mode="production", event_keys=("connect-event-key-0123",), signing_keys=(SIGNING_KEY,))
    async with serve(tmp_path, config=config, settings=Settings(poll_interval_ms=20)) as (base, _engine):
        good = await ready(base, key=SIGNING_KEY)
        with caplog.at_level(logging.WARNING, "outlast.connect"):
            async with httpx.AsyncClient() as client:
                start = f"{base}/v0/connect/start"
                empty = pb.StartRequest().SerializeToString()
                wrong = await client.post(
                    start, content=empty, headers={"Authorization": f"Bearer {bearer_token(OTHER)}"}
                )
                missing = await client.post(start, content=empty)
        assert wrong.status_code == 401 and "signing key not accepted" in wrong.json()["error"]
        assert missing.status_code == 401 and "signing key required" in missing.json()["error"]
        logged = [r.getMessage() for r in caplog.records]
        assert any("refused a worker" in m and "signing key not accepted" in m for m in logged), logged
        await still_served(good)  # the worker with the right key is untouched


async def test_capacity_is_honoured(server: tuple[str, Engine]) -> None:
    base, engine = server
    worker = await ready(base, capacity=1)
    assert (await engine.reads.get_app(APP)) is not None
    async with httpx.AsyncClient() as client:
        listed = (await client.get(f"{base}/api/workers")).json()["workers"]
    [shown] = [w for w in listed if w["app_id"] == APP]
    assert shown["id"] == worker.id and shown["app_id"] == APP and shown["functions"] == ["go"]
    assert shown["sdk"] == "raw" and shown["sdk_version"] == "0.0.1" and shown["capacity"] == 1
    assert shown["host"].startswith("raw via Connect from 127.0.0.1:")
    async with httpx.AsyncClient() as client:
        await client.post(f"{base}/e/key", json=[{"name": "raw/go", "data": {"i": 1}}, {"name": "raw/go"}])
    first = pb.GatewayExecutorRequestData.FromString(await worker.receive_kind("GATEWAY_EXECUTOR_REQUEST"))
    await worker.ws.send(message("WORKER_REQUEST_ACK", pb.WorkerRequestAckData(request_id=first.request_id)))
    driver = engine.drivers["connect"]
    assert isinstance(driver, ConnectDriver)
    assert len(driver.connections[worker.id].in_flight) == 1
    reply = pb.SDKResponse(request_id=first.request_id, status=pb.DONE, body=b'"one"', sdk_version="raw:v0")
    await worker.ws.send(message("WORKER_REPLY", reply))
    # the second request comes only once the first is answered (its ack comes first)
    kinds = [(await worker.receive())[0] for _ in range(2)]
    assert kinds == ["WORKER_REPLY_ACK", "GATEWAY_EXECUTOR_REQUEST"]
    await worker.ws.close()
    while any(w.app_id == APP for w in await engine.reads.list_workers(0)):  # closed: no worker any more
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient() as client:
        scraped = (await client.get(f"{base}/metrics")).text
    assert "outlast_connect_connections_accepted_total 1.0" in scraped
    assert 'outlast_connect_messages_total{direction="received",kind="WORKER_REPLY"} 1.0' in scraped


async def test_a_worker_that_never_acks_is_closed_and_its_run_retried(
    server: tuple[str, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    base, engine = server
    driver = engine.drivers["connect"]
    assert isinstance(driver, ConnectDriver)
    driver.ack_timeout_s = 2.0
    silent = await ready(base)
    async with httpx.AsyncClient() as client:
        await client.post(f"{base}/e/key", json={"name": "raw/go"})
    await silent.receive_kind("GATEWAY_EXECUTOR_REQUEST")
    helpful = await ready(base)  # connected while the silent one holds the request: untouched by its close
    with caplog.at_level(logging.WARNING, "outlast.connect"):
        code, reason = await silent.closed()
    assert code == 1008 and "did not acknowledge a request within 2s" in reason
    assert any(silent.id in r.getMessage() and "did not acknowledge" in r.getMessage() for r in caplog.records)
    await still_served(helpful)
    request = pb.GatewayExecutorRequestData.FromString(await helpful.receive_kind("GATEWAY_EXECUTOR_REQUEST"))
    await helpful.ws.send(message("WORKER_REQUEST_ACK", pb.WorkerRequestAckData(request_id=request.request_id)))
    reply = pb.SDKResponse(request_id=request.request_id, status=pb.DONE, body=b'"done"', sdk_version="raw:v0")
    await helpful.ws.send(message("WORKER_REPLY", reply))
    await helpful.receive_kind("WORKER_REPLY_ACK")
    while not (runs := await engine.reads.list_runs(RunFilter(app_id=APP, status="completed"))):
        await asyncio.sleep(0.02)  # polling for the commit that follows the reply
    run = await engine.reads.get_run(runs[0].id)
    assert run is not None and run.output == "done" and "did not acknowledge" in run.failures[0].error["message"]


async def test_a_draining_server_tells_its_workers_and_sends_them_nothing_more(server: tuple[str, Engine]) -> None:
    base, engine = server
    driver = engine.drivers["connect"]
    assert isinstance(driver, ConnectDriver)
    drained = await ready(base)
    await driver.drain()
    assert await drained.receive_kind("GATEWAY_CLOSING") == b""
    assert not driver.serves(APP)  # this process claims no runs for a drained worker
    async with httpx.AsyncClient() as client:
        await client.post(f"{base}/e/key", json={"name": "raw/go"})
    fresh = await ready(base)  # the worker reconnecting (here, to the same server)
    await fresh.receive_kind("GATEWAY_EXECUTOR_REQUEST")
    await drained.ws.send(message("WORKER_HEARTBEAT"))
    assert (await drained.receive())[0] == "GATEWAY_HEARTBEAT"  # open for replies, but sent no request


async def test_a_connect_app_is_not_resynced_by_url(server: tuple[str, Engine]) -> None:
    base, engine = server
    await ready(base)
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{base}/api/apps/{APP}/resync", json={})
    assert reply.status_code == 502 and "syncs over Connect" in reply.json()["message"]
    app = await engine.reads.get_app(APP)
    assert app is not None and app.error is None  # the app keeps no error for it


async def test_a_silent_worker_is_closed(server: tuple[str, Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    base, engine = server
    monkeypatch.setattr("outlast.server.connect.MISSED_HEARTBEATS", 0.05)  # half a second, not 30
    silent = await ready(base)
    code, reason = await silent.closed()
    assert code == 1008 and reason == "the worker sent nothing for 0.5s"
    while any(w.app_id == APP for w in await engine.reads.list_workers(0)):
        await asyncio.sleep(0.02)  # polling: the closed connection leaves the workers list


def cli_workers(database_url: str) -> list[dict[str, Any]]:
    """`outlast workers --json`, a process of its own reading the store."""
    shown = subprocess.run(
        [sys.executable, "-m", "outlast.cli", "--database-url", database_url, "workers", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(shown.stdout)["workers"])


async def stored_in_flight(engine: Engine, worker_id: str, count: int) -> None:
    """Until the store has the worker with `count` requests in flight (polling its batched write)."""
    while not any(w.id == worker_id and w.in_flight == count for w in await engine.reads.list_workers(0)):
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_requests_in_flight_show_live_without_a_heartbeat(tmp_path: Path, backend: str) -> None:
    if backend == "postgres" and not PG_URL:
        pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
    database = pg_database() if backend == "postgres" else f"sqlite:///{tmp_path}/server.db"
    settings = Settings(poll_interval_ms=20, backoff_scale=0.001)
    async with serve(tmp_path, database_url=database, settings=settings) as (base, engine):
        await in_flight_shown_live(base, engine, database)


async def in_flight_shown_live(base: str, engine: Engine, database_url: str) -> None:
    worker = await ready(base, capacity=2)
    async with httpx.AsyncClient() as client:
        await client.post(f"{base}/e/key", json={"name": "raw/go"})
        request = pb.GatewayExecutorRequestData.FromString(await worker.receive_kind("GATEWAY_EXECUTOR_REQUEST"))
        await worker.ws.send(message("WORKER_REQUEST_ACK", pb.WorkerRequestAckData(request_id=request.request_id)))
        # this server knows at once; the store (other processes, the CLI) a moment later
        [shown] = [w for w in (await client.get(f"{base}/api/workers")).json()["workers"] if w["id"] == worker.id]
        assert shown["in_flight"] == 1
        await asyncio.wait_for(stored_in_flight(engine, worker.id, 1), 20)
        [listed] = [w for w in await asyncio.to_thread(cli_workers, database_url) if w["id"] == worker.id]
        assert listed["in_flight"] == 1
        reply = pb.SDKResponse(request_id=request.request_id, status=pb.DONE, body=b'"ok"', sdk_version="raw:v0")
        await worker.ws.send(message("WORKER_REPLY", reply))
        await worker.receive_kind("WORKER_REPLY_ACK")
        await asyncio.wait_for(stored_in_flight(engine, worker.id, 0), 20)
        [shown] = [w for w in (await client.get(f"{base}/api/workers")).json()["workers"] if w["id"] == worker.id]
        assert shown["in_flight"] == 0
