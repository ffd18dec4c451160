"""A real loopback HTTP server for tests: uvicorn on a free port, serving `create_app(engine, config)`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn

from outlast.runtime.engine import Engine
from outlast.server.app import create_app
from outlast.server.mode import ServerConfig


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(engine: Engine, config: ServerConfig | None = None) -> AsyncIterator[str]:
    """Serve the engine's HTTP app until the block ends; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, config or ServerConfig()), port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
