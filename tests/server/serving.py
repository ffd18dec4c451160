"""An Outlast server with workers on a free loopback port, in this process, for API tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

import outlast
from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.runtime.worker import Worker
from outlast.server.app import WEBSOCKETS, create_app
from outlast.server.mode import ServerConfig
from outlast.settings import Settings
from outlast.storage import open_store
from tests.apps.shop import app as shop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(
    tmp_path: Path,
    config: ServerConfig | None = None,
    database_url: str | None = None,
    source: outlast.Outlast = shop,
    settings: Settings | None = None,
) -> AsyncIterator[tuple[str, Engine]]:
    engine = Engine(
        open_store(database_url or f"sqlite:///{tmp_path}/server.db"),
        SystemClock(),
        settings or Settings(poll_interval_ms=20),
    )
    await engine.add_source(source)
    await engine.open()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, config or ServerConfig()),
            port=port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
            ws=WEBSOCKETS,  # as `outlast dev`/`start` serve
        )
    )
    stop = asyncio.Event()
    tasks = [asyncio.create_task(server.serve()), asyncio.create_task(Worker(engine).run(stop))]
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", engine
    finally:
        stop.set()
        server.should_exit = True
        await asyncio.gather(*tasks)
        await engine.close()


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    """Poll an async predicate until it is true (runs execute on real workers)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)
