"""A worker on an Inngest SDK connected over Connect shows on the Workers and Apps pages with what
it said of itself (app, SDK, SDK version, capacity) and what the server knows of it (requests in
flight, last heartbeat). The worker is hand-driven: the official SDK's protobuf messages over a
real WebSocket to the `outlast dev` server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from websockets import Subprotocol
from websockets.sync.client import ClientConnection, connect

from tests.server.test_connect_gateway import APP, SUBPROTOCOL, function, message, pb


def receive_kind(ws: ClientConnection, kind: str) -> bytes:
    while True:
        parsed = pb.ConnectMessage.FromString(ws.recv(timeout=20))
        if pb.GatewayMessageType.Name(parsed.kind) == kind:
            return bytes(parsed.payload)


@pytest.fixture
def connected(server: str) -> Iterator[tuple[ClientConnection, str]]:
    """A Connect worker of APP (`py` 0.5.19, maxWorkerConcurrency 3), handshake done."""
    start = pb.StartResponse.FromString(
        httpx.post(f"{server}/v0/connect/start", content=pb.StartRequest().SerializeToString(), timeout=10).content
    )
    with connect(start.gateway_endpoint, subprotocols=[Subprotocol(SUBPROTOCOL)]) as ws:
        receive_kind(ws, "GATEWAY_HELLO")
        hello = pb.WorkerConnectRequestData(
            connection_id=start.connection_id,
            instance_id="visible-host",
            auth_data=pb.AuthData(session_token=start.session_token, sync_token=start.sync_token),
            apps=[pb.AppConfiguration(app_name=APP, functions=json.dumps([function("go")]).encode())],
            sdk_language="py",
            sdk_version="0.5.19",
            max_worker_concurrency=3,
        )
        ws.send(message("WORKER_CONNECT", hello))
        receive_kind(ws, "GATEWAY_CONNECTION_READY")
        yield ws, start.connection_id


def listed(server: str, worker_id: str, in_flight: int) -> dict[str, Any]:
    """The worker in /api/workers once the store has it with `in_flight` requests (a readiness signal)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for w in httpx.get(f"{server}/api/workers", timeout=10).json()["workers"]:
            if w["id"] == worker_id and w["in_flight"] == in_flight:
                return dict(w)
        time.sleep(0.05)
    raise AssertionError(f"worker {worker_id} was not listed with {in_flight} in flight")


def test_a_connected_worker_shows_with_its_sdk_capacity_and_requests_in_flight(
    page: Any, server: str, connected: tuple[ClientConnection, str]
) -> None:
    ws, worker_id = connected
    httpx.post(f"{server}/e/key", json={"name": "raw/go"}, timeout=10)
    request = pb.GatewayExecutorRequestData.FromString(receive_kind(ws, "GATEWAY_EXECUTOR_REQUEST"))
    ws.send(message("WORKER_REQUEST_ACK", pb.WorkerRequestAckData(request_id=request.request_id)))
    # no heartbeat needed: the count is live
    shown = listed(server, worker_id, in_flight=1)
    assert (shown["app_id"], shown["sdk"], shown["sdk_version"], shown["capacity"]) == (APP, "py", "0.5.19", 3)

    page.goto("/workers")
    row = page.locator(f'tr[data-worker="{worker_id}"]')
    expect(row).to_contain_text("(Connect)")
    expect(row.locator("td").nth(1)).to_have_text(APP)
    expect(row.locator('[data-col="sdk"]')).to_have_text("py")
    expect(row.locator('[data-col="sdk-version"]')).to_have_text("0.5.19")
    expect(row.locator('[data-col="capacity"]')).to_have_text("3")
    expect(row.locator('[data-col="in-flight"]')).to_have_text("1")
    expect(row.locator('[data-col="heartbeat"]')).to_contain_text("s ago")
    expect(row).to_contain_text("visible-host via Connect from 127.0.0.1:")

    page.goto("/apps")
    app_row = page.locator("tr", has=page.locator("strong", has_text=APP))
    expect(app_row.locator('[data-col="connect-workers"]')).to_contain_text(
        f"{worker_id}: py 0.5.19, capacity 3, 1 in flight"
    )
    # a Connect app has no URL to resync from: the page says how it syncs instead of offering it
    expect(app_row.get_by_role("button", name="Resync")).to_have_count(0)
    expect(app_row.locator('[data-col="connect-sync"]')).to_have_text(
        "Syncs over Connect each time a worker connects: restart a worker to resync."
    )
    expect(app_row.get_by_role("button", name="Remove")).to_be_visible()

    reply = pb.SDKResponse(request_id=request.request_id, status=pb.DONE, body=b'"ok"', sdk_version="py:v0.5.19")
    ws.send(message("WORKER_REPLY", reply))
    receive_kind(ws, "WORKER_REPLY_ACK")
    listed(server, worker_id, in_flight=0)
    page.goto("/workers")
    expect(page.locator(f'tr[data-worker="{worker_id}"] [data-col="in-flight"]')).to_have_text("0")
