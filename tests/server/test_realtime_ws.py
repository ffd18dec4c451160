"""Inngest's realtime WebSocket (`/v1/realtime/connect`): frames as Inngest's client reads them,
in order and resumable; refusals with Inngest's HTTP status before the upgrade; Inngest's
`sub`/`unsub` frames; a stalled socket that slows nobody else and loses nothing."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from outlast.core.realtime import MessageRecord
from outlast.runtime.engine import Engine
from outlast.server.mode import ServerConfig
from outlast.server.realtime_tokens import TOKEN_TTL_MS, ChannelTokens
from tests.server.serving import serve
from tests.server.test_realtime_http import PRODUCTION, publish, stream_started

ARRIVAL_S = 30


async def token(url: str, channel: str, *topics: str) -> str:
    async with httpx.AsyncClient(base_url=url) as client:
        reply = await client.post("/v1/realtime/token", json=[{"channel": channel, "name": t} for t in topics])
    assert reply.status_code == 201, reply.text
    return str(reply.json()["jwt"])


def ws_url(url: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url.replace('http://', 'ws://')}/v1/realtime/connect?{query}"


async def frames(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        return [json.loads(await ws.recv()) for _ in range(n)]

    return await asyncio.wait_for(read(), ARRIVAL_S)


async def refusal(url: str, **headers: str) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url, additional_headers=headers):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}").get("error", "")


def small_socket(url: str) -> socket.socket:
    """A connection with a small receive buffer (no autotuning): a reader that stops reading
    stops the server's writes to it soon, rather than after tens of megabytes."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = url.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    return sock


async def live(engine: Engine, n: int = 1) -> None:
    hub = await engine.realtime()
    while sum(len(s) for s in hub._live.values()) < n:
        await asyncio.sleep(0.01)


async def test_messages_arrive_as_inngest_frames_in_order_and_since_resumes(tmp_path: Path, store_url: str) -> None:
    async with serve(tmp_path, database_url=store_url) as (url, engine):
        key = await token(url, "order:1", "status")
        async with websockets.connect(ws_url(url, token=key)) as ws:
            await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
            await publish(engine, "order:1", "a", topic="log")  # a topic the token does not name
            await publish(engine, "order:2", "elsewhere", topic="status")
            now = engine.clock.now_ms()
            await engine.store.publish(
                [MessageRecord(channel="order:1", topic="status", data={"n": n}, ts=now, run_id="R1") for n in (1, 2)]
            )
            await publish(engine, "order:1", "no run", topic="status")
            got = await frames(ws, 3)
        async with websockets.connect(ws_url(url, token=key, since=str(got[0]["id"]))) as again:
            resumed = await frames(again, 2)
        async with websockets.connect(ws_url(url), additional_headers={"Authorization": f"Bearer {key}"}) as bearer:
            await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
            await publish(engine, "order:1", "by header", topic="status")
            [by_header] = await frames(bearer, 1)
    assert [(f["kind"], f["channel"], f["topic"], f["data"]) for f in got] == [
        ("data", "order:1", "status", {"n": 1}),
        ("data", "order:1", "status", {"n": 2}),
        ("data", "order:1", "status", "no run"),
    ]
    assert got[0]["run_id"] == "R1" and "run_id" not in got[2]  # Inngest omits it; its client refuses null
    assert got[0]["created_at"].endswith("Z") and got[0]["id"] < got[1]["id"] < got[2]["id"]
    assert [f["data"] for f in resumed] == [{"n": 2}, "no run"]
    assert by_header["data"] == "by header"


async def test_a_token_it_may_not_use_is_refused_with_401_and_bad_input_with_400(tmp_path: Path) -> None:
    async with serve(tmp_path, config=PRODUCTION) as (url, engine):
        now = engine.clock.now_ms()
        mine = ChannelTokens(PRODUCTION)
        foreign = ChannelTokens(ServerConfig(mode="production", event_keys=("ek",), signing_keys=("signkey-other",)))
        good = mine.mint(channel="c", topics=["t"], now_ms=now)
        cases = {
            "missing": await refusal(ws_url(url)),
            "forged": await refusal(ws_url(url, token="v1.eyJjIjoiYyJ9.forged")),
            "garbage": await refusal(ws_url(url, token="nope")),
            "foreign": await refusal(ws_url(url, token=foreign.mint(channel="c", topics=None, now_ms=now))),
            "expired": await refusal(ws_url(url, token=mine.mint(channel="c", topics=None, now_ms=now - TOKEN_TTL_MS))),
            "future since": await refusal(ws_url(url, token=good, since="999999")),
            "bad since": await refusal(ws_url(url, token=good), **{"Last-Event-ID": "yesterday"}),
        }
        async with websockets.connect(ws_url(url, token=good)) as ws:  # the server is still serving
            await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
            await publish(engine, "c", "still here")
            [ok] = await frames(ws, 1)
    assert cases["missing"] == (401, "a subscription token is required: ?token= from POST /v1/realtime/token")
    assert cases["forged"][0] == cases["garbage"][0] == cases["foreign"][0] == cases["expired"][0] == 401
    assert "signature is not accepted" in cases["forged"][1] and "not a channel token" in cases["garbage"][1]
    assert "minted by another server" in cases["foreign"][1] and "expired at" in cases["expired"][1]
    assert cases["future since"][0] == 400 and "in the future" in cases["future since"][1]
    assert cases["bad since"][0] == 400 and "must be a message id" in cases["bad since"][1]
    assert ok["data"] == "still here"


async def test_sub_and_unsub_frames_change_what_a_socket_gets_and_bad_frames_are_answered(tmp_path: Path) -> None:
    async with (
        serve(tmp_path) as (url, engine),
        websockets.connect(ws_url(url, token=await token(url, "a", "t"))) as ws,
    ):
        await ws.send(json.dumps({"kind": "sub", "data": await token(url, "b", "t")}))
        await ws.send("not json")
        await ws.send(json.dumps({"kind": "sub", "data": "nope"}))
        await ws.send(json.dumps({"kind": "hello"}))
        await ws.send(json.dumps({"kind": "unsub", "data": "a"}))
        await ws.send(json.dumps({"kind": "unsub", "data": [{"channel": ["a"], "name": {}}]}))
        answers = await frames(ws, 5)
        await asyncio.wait_for(live(engine, 2), ARRIVAL_S)
        await publish(engine, "a", "a1")
        await publish(engine, "b", "b1")
        both = await frames(ws, 2)
        await ws.send(json.dumps({"kind": "unsub", "data": [{"channel": "a", "name": "t"}]}))
        while (await engine.realtime())._live.get(("channel", "a")):
            await asyncio.sleep(0.01)
        await publish(engine, "a", "a2")
        await publish(engine, "b", "b2")
        [after] = await frames(ws, 1)
    assert [a["kind"] for a in answers] == ["error"] * 5 and answers[3] == answers[4]
    assert "not JSON" in answers[0]["error"] and "not a channel token" in answers[1]["error"]
    assert "unknown frame kind 'hello'" in answers[2]["error"] and "list of topics" in answers[3]["error"]
    assert sorted((f["channel"], f["data"]) for f in both) == [("a", "a1"), ("b", "b1")]
    assert (after["channel"], after["data"]) == ("b", "b2")


async def test_a_stalled_socket_slows_no_other_and_loses_nothing(tmp_path: Path, store_url: str) -> None:
    n, blob = 120, "x" * 100_000  # ~12 MB, sent uncompressed: more than the kernel holds for a stalled socket
    async with serve(tmp_path, database_url=store_url) as (url, engine):
        (await engine.realtime()).buffer_limit = 20
        key = await token(url, "flood", "t")
        async with (
            websockets.connect(
                ws_url(url, token=key), sock=small_socket(url), max_queue=1, compression=None
            ) as stalled,
            websockets.connect(ws_url(url, token=key)) as reader,
        ):
            await asyncio.wait_for(live(engine, 2), ARRIVAL_S)
            for i in range(n):
                await publish(engine, "flood", {"i": i, "blob": blob})
            fast = await frames(reader, n)
            slow = await frames(stalled, n)
    assert [f["data"]["i"] for f in fast] == list(range(n))
    assert [f["data"]["i"] for f in slow] == list(range(n))


async def test_a_stopping_server_closes_the_socket_as_inngest_does(tmp_path: Path) -> None:
    async with (
        serve(tmp_path) as (url, engine),
        websockets.connect(ws_url(url, token=await token(url, "c", "t"))) as ws,
    ):
        await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
        await (await engine.realtime()).close()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), ARRIVAL_S)
    assert (ws.close_code, ws.close_reason) == (1001, "closing")


async def test_a_sub_frame_widening_a_channels_topics_writes_nothing_twice(tmp_path: Path) -> None:
    async with (
        serve(tmp_path) as (url, engine),
        websockets.connect(ws_url(url, token=await token(url, "a", "t1"))) as ws,
    ):
        await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
        await publish(engine, "a", "x1", topic="t1")
        [first] = await frames(ws, 1)
        await publish(engine, "a", "y1", topic="t2")  # not asked for yet, but after what was written
        await ws.send(json.dumps({"kind": "sub", "data": await token(url, "a", "t2")}))
        await ws.send(json.dumps({"kind": "marker"}))  # answered once the sub before it is done
        before = await frames(ws, 2)
        await publish(engine, "a", "x2", topic="t1")
        await publish(engine, "a", "y2", topic="t2")
        after = await frames(ws, 2)
    data = [(f["topic"], f["data"]) for f in [first, *before, *after] if f["kind"] == "data"]
    assert data == [("t1", "x1"), ("t2", "y1"), ("t1", "x2"), ("t2", "y2")]
    assert [f["kind"] for f in before if f["kind"] == "error"] == ["error"]
