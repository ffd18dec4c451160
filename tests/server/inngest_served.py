"""A real loopback server over an engine, and a shop app whose runs the Inngest API tests read."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

import outlast
from outlast.runtime.engine import Engine
from outlast.server.app import create_app
from outlast.server.mode import ServerConfig
from outlast.testing import TestEngine

SIGNING_KEY = "signkey-test-0123456789abcdef0123456789abcdef"
EVENT_KEY = "event-key-1"


@asynccontextmanager
async def serving(engine: Engine, config: ServerConfig | None = None) -> AsyncIterator[str]:
    """Serve the whole app on a free loopback port (the socket is bound here: no port race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine, config or ServerConfig()), log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class BoomError(Exception):
    pass


def shop_app() -> outlast.Outlast:
    app = outlast.Outlast("shop")

    @app.function(id="checkout", trigger="shop/checkout", retries=1)
    async def checkout(ctx: outlast.Context) -> Any:
        reserved = await ctx.step.run("reserve", lambda: {"sku": ctx.event.data.get("sku")})
        for i in range(2):
            await ctx.step.run("charge", lambda i=i: i * 10)
        await ctx.step.sleep("cool-off", "1m")
        return {"ok": True, "sku": reserved["sku"]}

    @app.function(id="flaky", trigger="shop/flaky", retries=1)
    async def flaky(ctx: outlast.Context) -> Any:
        def fail() -> None:
            raise BoomError("A failed!")

        await ctx.step.run("a fails", fail)
        await ctx.step.run("b never runs", lambda: "b")

    attempts: list[int] = []

    @app.function(id="wobbly", trigger="shop/wobbly", retries=2)
    async def wobbly(ctx: outlast.Context) -> Any:
        attempts.append(ctx.attempt)
        if ctx.attempt == 0:
            raise BoomError("first try")
        return "steady"

    @app.function(id="waiter", trigger="shop/wait")
    async def waiter(ctx: outlast.Context) -> Any:
        return await ctx.step.wait_for_event("pay", event="shop/paid", timeout="1h", match="data.id")

    @app.function(id="parent", trigger="shop/parent")
    async def parent(ctx: outlast.Context) -> Any:
        return await ctx.step.invoke("call-child", function=child, data={"x": 2})

    @app.function(id="child", trigger="shop/child")
    async def child(ctx: outlast.Context) -> Any:
        return ctx.event.data["x"] * 2

    return app


async def settle(t: TestEngine, *, rounds: int = 6, step: str = "10m") -> None:
    """Run everything due, moving the virtual clock on so retries and sleeps come due."""
    for _ in range(rounds):
        await t.run_until_idle()
        t.advance(step)
    await t.run_until_idle()
