"""A Durable Endpoint's stream on Outlast's realtime: what the SDK tees to
`/v1/realtime/publish/tee` is stored whole event by whole event, and the `realtime_token` that
`POST /v1/checkpoint` gives reads the run's stream from its start at `/v1/realtime/sse`, up to
the endpoint's `inngest.response` (tests/interop/test_endpoint_streams.py runs the official SDK
against it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from outlast.server.inngest_realtime import TEE_TOPIC
from tests.server.serving import serve

ARRIVAL_S = 10
RUN_ID = "01JZZZZZZZZZZZZZZZZZZZZZZA"
EVENT = {"name": "inngest/http.request", "data": {"domain": "http://127.0.0.1:9", "method": "GET", "path": "/s"}}


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _raw_until(lines: AsyncIterator[str], last: str) -> list[str]:
    async def read() -> list[str]:
        seen: list[str] = []
        async for line in lines:
            seen.append(line)
            if line == last:
                return seen
        raise AssertionError(f"the stream ended before {last!r}: {seen}")

    return await asyncio.wait_for(read(), ARRIVAL_S)


async def _rest(lines: AsyncIterator[str]) -> list[str]:
    return [line async for line in lines]


async def test_a_tee_stores_whole_events_even_when_chunks_split_them(tmp_path: Path, store_url: str) -> None:
    async with (
        serve(tmp_path, database_url=store_url) as (url, engine),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):

        async def stored() -> list[str]:
            return [m.data for m in await engine.store.read_messages(channels=[RUN_ID], topics=[TEE_TOPIC], after_id=0)]

        async def body() -> AsyncIterator[bytes]:
            yield b'event: a\ndata: 1\n\nevent: inngest.stream\ndata: {"data":"caf\xc3'
            while not await stored():  # the first event is in: the next chunk comes on its own
                await asyncio.sleep(0.01)
            yield b'\xa9"}\n\ntail'

        teed = await client.post("/v1/realtime/publish/tee", params={"channel": RUN_ID}, content=body())
        messages = await stored()
    assert teed.status_code == 200 and teed.json()["bytes"] == 68
    assert messages == [
        "event: a\ndata: 1\n\n",
        'event: inngest.stream\ndata: {"data":"café"}\n\n',
        "tail",  # what was left when the body ended, as it was
    ]


async def test_the_checkpoint_realtime_token_reads_the_runs_stream_from_its_start(
    tmp_path: Path, store_url: str
) -> None:
    async with (
        serve(tmp_path, database_url=store_url) as (url, _engine),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        made = await client.post("/v1/checkpoint", json={"run_id": RUN_ID, "event": EVENT})
        token = made.json()["data"]["realtime_token"]
        # the background attempt streams before the caller follows its redirect: nothing is lost
        early = _chunks(b"event: inngest.stream\ndata: early\n\n")
        await client.post("/v1/realtime/publish/tee", params={"channel": RUN_ID}, content=early)
        await client.post("/v1/realtime/publish/tee", params={"channel": "another-run"}, content=_chunks(b"x\n\n"))
        async with client.stream("GET", "/v1/realtime/sse", params={"token": token}) as raw:
            lines = raw.aiter_lines()
            first = await _raw_until(lines, "data: early")
            late = _chunks(b"event: inngest.response\ndata: late\n\n")
            await client.post("/v1/realtime/publish/tee", params={"channel": RUN_ID}, content=late)
            then = await _raw_until(lines, "data: late")
            rest = await asyncio.wait_for(_rest(lines), ARRIVAL_S)  # the endpoint answered: the end
        forged = await client.get("/v1/realtime/sse", params={"token": token[:-2] + "xx"})
    assert made.status_code == 200, made.text
    assert "event: inngest.stream" in first and "x" not in first + then
    assert "event: inngest.response" in then and not any(rest)
    assert forged.status_code == 401 and "signature" in forged.json()["error"]
