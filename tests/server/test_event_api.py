"""The event API `outlast start` serves, over a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import outlast
from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.server.app import create_app
from outlast.server.mode import ServerConfig
from outlast.storage import open_store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    app = outlast.Outlast("api")

    @app.function(id="echo", trigger="api/echo")
    async def echo(ctx: outlast.Context) -> Any:
        return ctx.event.data

    engine = Engine(open_store(f"sqlite:///{tmp_path}/api.db"), SystemClock(), app.settings)
    await engine.add_source(app)
    await engine.open()
    port = free_port()
    app_config = ServerConfig(mode="production", event_keys=("secret-key",))
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, app_config), port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}", engine
    server.should_exit = True
    await task
    await engine.close()


async def test_events_are_stored_and_start_runs(served: tuple[str, Engine]) -> None:
    url, engine = served
    async with httpx.AsyncClient() as client:
        reply = await client.post(
            f"{url}/e/secret-key", json=[{"name": "api/echo", "data": {"n": 1}}, {"name": "api/echo", "data": {"n": 2}}]
        )
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == 200 and len(body["ids"]) == 2
    runs = await engine.store.list_runs(outlast.storage.base.RunFilter(app_id="api"))
    assert sorted(r.event_ids[0] for r in runs) == sorted(body["ids"])


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/e/wrong-key", {"name": "api/echo"}, 401, "Event key not found"),
        ("/e/", {"name": "api/echo"}, 401, "Event key is required"),
        ("/e/secret-key", [{"name": "api/echo"}, {"data": {}}], 400, "event[1].name"),
        ("/e/secret-key", {"name": "api/echo", "data": [1]}, 400, "event[0].data"),
        ("/e/secret-key", "not json", 400, "not valid JSON"),
        ("/e/secret-key", '{"name": "api/echo", "data": {"x": NaN}}', 400, "not valid JSON"),
        ("/e/secret-key", b'{"name": "api/\xff"}', 400, "not valid UTF-8: byte 0xff at offset 14"),
        ("/e/secret-key", '{"name": "api/\\u0000x"}', 400, "event[0].name: an event name must not contain control"),
        ("/e/secret-key", '{"name": "api/echo", "id": "a\\u0000b"}', 400, "event[0].id: must not contain a NUL"),
    ],
)
async def test_bad_requests_are_refused_and_store_nothing(
    served: tuple[str, Engine], path: str, body: Any, status: int, fragment: str
) -> None:
    url, engine = served
    async with httpx.AsyncClient() as client:
        content = body if isinstance(body, (str, bytes)) else None
        reply = await client.post(url + path, json=None if content else body, content=content)
    assert reply.status_code == status and fragment in reply.json()["error"]
    assert await engine.store.list_runs(outlast.storage.base.RunFilter(app_id="api")) == []


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_huge_body_is_refused_early_without_being_read_whole(
    served: tuple[str, Engine], declared: bool
) -> None:
    """A 200 MB POST gets its 413 once the server knows it is over 16 MiB: the client has sent
    only a fraction of it (the rest is never read, so never held in memory)."""
    url, engine = served
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    size, chunk = 200 * 1024 * 1024, b"x" * (256 * 1024)
    framing = f"Content-Length: {size}" if declared else "Transfer-Encoding: chunked"
    writer.write(
        f"POST /e/secret-key HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n".encode()
    )
    sent = 0
    response = asyncio.ensure_future(reader.read(4096))
    try:
        while sent < size and not response.done():
            writer.write(chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            await asyncio.wait_for(writer.drain(), 10)
    except (ConnectionError, TimeoutError):
        pass  # the server answered and closed: it will read no more
    head = await asyncio.wait_for(response, 10)
    writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert b"over the limit of 16777216 bytes" in head
    assert sent < 64 * 1024 * 1024, f"the client could send {sent} bytes before the refusal"
    assert await engine.store.list_runs(outlast.storage.base.RunFilter(app_id="api")) == []
