"""Live updates (`GET /api/stream`): runs made by this process's workers and by other processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from outlast.core.clock import SystemClock
from outlast.runtime.engine import Engine
from outlast.server.live import Live
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


@contextlib.asynccontextmanager
async def listening(url: str) -> AsyncIterator[AsyncIterator[str]]:
    """The stream's lines, once the server counts this listener (its first line has arrived)."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", "/api/stream") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 10) == "retry: 2000"
        yield lines


@pytest.fixture
def first_look(monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once the stream's poller has read the store: what changes after that is news."""
    looked = asyncio.Event()
    look = Live._poll_once

    async def look_and_tell(live: Live) -> None:
        await look(live)
        looked.set()

    monkeypatch.setattr(Live, "_poll_once", look_and_tell)
    return looked


async def test_the_stream_tells_at_once_of_runs_started_here(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, _engine), listening(url) as lines:
        async with httpx.AsyncClient(base_url=url) as client:
            await client.post("/api/events", json={"name": "shop/ship", "data": {"order_id": "here"}})
        here = await next_message(lines, "run")
    assert here["function_id"] == "ship"


async def test_the_stream_tells_of_runs_made_by_other_processes(tmp_path: Path, first_look: asyncio.Event) -> None:
    db = f"sqlite:///{tmp_path}/live.db"
    async with serve(tmp_path, database_url=db) as (url, _engine), listening(url) as lines:
        await asyncio.wait_for(first_look.wait(), 10)
        other = Engine(open_store(db), SystemClock(), Settings())  # another process's view: no workers here
        await other.open()
        try:
            await other.send({"name": "shop/nap", "data": {}})
        finally:
            await other.close()
        assert await next_message(lines, "runs") == {"kind": "runs"}
