"""`step.fetch` on inngest@4: the server makes the request (the `Gateway` opcode), durably; the
response is the step's output; a request that gets no answer is a step error, retried as a step;
credentials in the request never reach the logs or the error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.harness import Outlast, SdkApp, free_port, js4_app

SECRET = "s3cret-token"


class StandIn:
    """A local HTTP server standing in for an API: answers every request with JSON naming it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
        method, path, _ = lines[0].split(" ")
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        payload = json.dumps({"got": json.loads(body) if body else None, "path": path}).encode()
        writer.write(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(payload)}\r\nconnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def stand_in() -> AsyncIterator[StandIn]:
    api = StandIn()
    api.server = await asyncio.start_server(api.serve, "127.0.0.1", api.port)
    yield api
    api.server.close()
    await api.server.wait_closed()


@pytest.fixture
def app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    served = js4_app(tmp_path, outlast)
    yield served
    served.proc.stop()


async def test_step_fetch_is_made_by_the_server_once(outlast: Outlast, app: SdkApp, stand_in: StandIn) -> None:
    await app.sync()
    (event_id,) = await outlast.send({"name": "js4/fetch", "data": {"url": f"{stand_in.url}/items?x=1", "n": 7}})
    run = await outlast.finished_run(event_id)
    assert run.status == "completed", run.error
    assert run.output == {"status": 201, "body": {"got": {"n": 7}, "path": "/items?x=1"}, "type": "application/json"}
    [request] = stand_in.requests
    assert (request["method"], request["headers"]["authorization"]) == ("POST", f"Bearer {SECRET}")
    [step] = run.steps
    assert step.status == "completed" and step.output["status_code"] == 201
    assert SECRET not in outlast.proc.output()


async def test_a_fetch_with_no_answer_is_retried_then_fails_without_its_secrets(outlast: Outlast, app: SdkApp) -> None:
    await app.sync()
    closed = f"http://127.0.0.1:{free_port()}/hook?token={SECRET}"
    (event_id,) = await outlast.send({"name": "js4/fetch", "data": {"url": closed, "n": 1}})
    run = await outlast.finished_run(event_id)
    assert run.status == "failed"
    [step] = run.steps
    assert step.status == "failed" and step.attempts == 2  # retries: 1
    assert step.error is not None and step.error["name"] == "GatewayError"
    assert "step.fetch POST http://127.0.0.1:" in step.error["message"] and "/hook" in step.error["message"]
    assert SECRET not in json.dumps(step.error) and SECRET not in json.dumps(run.error)
    assert SECRET not in outlast.proc.output()
