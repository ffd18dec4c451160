"""Live updates (`GET /api/stream`): runs made by this process's workers and by other processes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.settings import Settings
from outlast.storage import open_store
from tests.server.serving import serve


async def next_message(lines: Any, want: str, timeout: float = 10.0) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        async for line in lines:
            if line.startswith("data: "):
                message = json.loads(line[6:])
                if message.get("kind") == want:
                    return dict(message)
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), timeout)


async def test_the_stream_tells_of_runs_started_here_and_in_other_processes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/live.db"
    async with (
        serve(tmp_path, database_url=db) as (url, _engine),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", "/api/stream") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        await asyncio.sleep(1.2)  # the poller has taken its first look
        await client.post("/api/events", json={"name": "shop/ship", "data": {"order_id": "here"}})
        here = await next_message(lines, "run")
        assert here["function_id"] == "ship"

        other = Engine(open_store(db), SystemClock(), Settings())  # another process's view: no workers here
        await other.open()
        try:
            await other.send({"name": "shop/nap", "data": {}})
        finally:
            await other.close()
        assert await next_message(lines, "runs") == {"kind": "runs"}
