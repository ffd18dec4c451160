"""Realtime over HTTP: `GET /api/realtime` as server-sent events that resume without loss, and
channel tokens (`POST /api/realtime/token`) that production streams require."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from outlast.core.realtime import MessageRecord
from outlast.protocol.signing import bearer_token
from outlast.runtime.engine import Engine
from outlast.server.mode import ServerConfig
from outlast.server.realtime_tokens import ChannelTokens
from tests.server.serving import serve

SIGNING_KEY = "signkey-test-0123456789abcdef0123456789abcdef"
PRODUCTION = ServerConfig(
    mode="production", event_keys=("ek",), signing_keys=(SIGNING_KEY,), dashboard_password="open sesame"
)
ARRIVAL_S = 10


async def publish(engine: Engine, channel: str, *values: Any, topic: str = "t") -> None:
    now = engine.clock.now_ms()
    await engine.store.publish([MessageRecord(channel=channel, topic=topic, data=v, ts=now) for v in values])


async def sse(lines: AsyncIterator[str], n: int) -> list[tuple[str, dict[str, Any]]]:
    """The next `n` messages of an SSE stream: (the event's id, its JSON data)."""

    async def read() -> list[tuple[str, dict[str, Any]]]:
        got: list[tuple[str, dict[str, Any]]] = []
        event_id = ""
        async for line in lines:
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: ") and event_id:
                got.append((event_id, json.loads(line[6:])))
                event_id = ""
                if len(got) == n:
                    return got
        raise AssertionError("the stream ended")

    return await asyncio.wait_for(read(), ARRIVAL_S)


async def stream_started(engine: Engine) -> None:
    """The subscription is live: the hub has a subscriber (a readiness signal, not a sleep)."""
    hub = await engine.realtime()
    while not hub._live:
        await asyncio.sleep(0.01)


async def test_the_stream_sends_each_message_with_its_id_and_resumes_from_last_event_id(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with client.stream("GET", "/api/realtime", params={"channel": "order:1"}) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
            await publish(engine, "order:1", "a", "b")
            await publish(engine, "order:2", "elsewhere")
            first = await sse(stream.aiter_lines(), 1)
        [(first_id, first_message)] = first
        assert first_message["data"] == "a" and first_message["channel"] == "order:1"
        assert first_id == str(first_message["id"])
        assert set(first_message) == {"id", "channel", "topic", "data", "run_id", "ts"}
        await publish(engine, "order:1", "c")  # while nobody is connected
        headers = {"Last-Event-ID": first_id}
        async with client.stream("GET", "/api/realtime?channel=order:1", headers=headers) as again:
            rest = await sse(again.aiter_lines(), 2)
        async with client.stream("GET", "/api/realtime", params={"channel": "order:1", "since": "0"}) as since:
            everything = await sse(since.aiter_lines(), 3)
    assert [m["data"] for _, m in rest] == ["b", "c"]
    assert [m["data"] for _, m in everything] == ["a", "b", "c"]


async def test_topics_filter_the_stream(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=30) as client:
        await publish(engine, "c", "s1", topic="status")
        await publish(engine, "c", "l1", topic="log")
        await publish(engine, "c", "p1", topic="progress")
        params = {"channel": "c", "topics": "status,progress", "since": "0"}
        async with client.stream("GET", "/api/realtime", params=params) as stream:
            got = await sse(stream.aiter_lines(), 2)
    assert [m["data"] for _, m in got] == ["s1", "p1"]


async def test_bad_stream_requests_get_a_clear_400(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=30) as client:
        await publish(engine, "c", "one")
        for params, headers, expected in [
            ({"channel": "x" * 257}, {}, "channel is 257 characters long, the limit is 256"),
            ({"channel": "a\tb"}, {}, "control characters"),
            ({}, {}, "give channel= (or run_id="),
            ({"channel": ""}, {}, "channel must not be empty"),
            ({"channel": "c", "since": "99"}, {}, "since 99 is in the future: the newest message id is"),
            ({"channel": "c"}, {"Last-Event-ID": "abc"}, "must be a message id"),
        ]:
            response = await client.get("/api/realtime", params=params, headers=headers)
            assert response.status_code == 400, params
            assert expected in response.json()["error"]


async def test_production_streams_need_a_channel_token_minted_by_a_logged_in_caller(tmp_path: Path) -> None:
    async with (
        serve(tmp_path, config=PRODUCTION) as (url, engine),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        refused = await client.get("/api/realtime", params={"channel": "c"})
        assert refused.status_code == 401 and "token is required" in refused.json()["error"]
        body = {"channel": "c", "topics": None}
        assert (await client.post("/api/realtime/token", json=body)).status_code == 401
        with_password = await client.post(
            "/api/realtime/token", json=body, headers={"Authorization": "Bearer open sesame"}
        )
        with_key = await client.post(
            "/api/realtime/token", json=body, headers={"Authorization": f"Bearer {bearer_token(SIGNING_KEY)}"}
        )
        assert with_password.status_code == with_key.status_code == 200
        token = with_key.json()["token"]
        assert "open sesame" not in token and SIGNING_KEY not in token

        await publish(engine, "c", "secret")
        async with client.stream("GET", "/api/realtime", params={"channel": "c", "token": token, "since": "0"}) as ok:
            assert ok.status_code == 200
            [(_, message)] = await sse(ok.aiter_lines(), 1)
        assert message["data"] == "secret"

        expired = ChannelTokens(PRODUCTION).mint(channel="c", topics=None, now_ms=engine.clock.now_ms() - 3_700_000)
        only_status = ChannelTokens(PRODUCTION).mint(channel="c", topics=["status"], now_ms=engine.clock.now_ms())
        foreign = ChannelTokens(ServerConfig(mode="production", event_keys=("ek",), dashboard_password="other")).mint(
            channel="c", topics=None, now_ms=engine.clock.now_ms()
        )
        for params, expected in [
            ({"channel": "other", "token": token}, "for another channel"),
            ({"channel": "c", "token": expired}, "the token expired at"),
            ({"channel": "c", "token": foreign}, "minted by another server"),
            ({"channel": "c", "token": token[:-2] + "xx"}, "altered"),
            ({"channel": "c", "token": only_status, "topics": "log"}, "does not allow the topics 'log'"),
            ({"channel": "c", "token": "garbage"}, "not a channel token"),
        ]:
            response = await client.get("/api/realtime", params=params)
            assert response.status_code == 401, params
            assert expected in response.json()["error"]
        bad = await client.post(
            "/api/realtime/token", json={"channel": "a\nb"}, headers={"Authorization": "Bearer open sesame"}
        )
        assert bad.status_code == 400 and "control characters" in bad.json()["error"]


async def test_inngest_publish_routes_land_on_the_same_channels(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=30) as client:
        params = {"channel": "chat:1", "topic": "status", "run_id": "01JRUN"}
        assert (await client.post("/v1/realtime/publish", params=params, json={"message": "hi"})).status_code == 200
        await client.post("/v1/realtime/publish", params=params, content=b"plain text")
        token = await client.post("/v1/realtime/token", json=[{"channel": "chat:1", "name": "status", "kind": "run"}])
        assert token.status_code == 201
        async with client.stream("GET", "/v1/realtime/sse", params={"token": token.json()["jwt"]}) as inngest_sse:
            await asyncio.wait_for(stream_started(engine), ARRIVAL_S)
            await client.post("/v1/realtime/publish", params=params, json=[1, 2])
            [(_, live)] = await sse(inngest_sse.aiter_lines(), 1)
        kept = await engine.store.read_messages(channels=["chat:1"], after_id=0)
        bad = await client.post("/v1/realtime/publish", params={"channel": "x" * 300}, json={})
    assert [(m.topic, m.data, m.run_id) for m in kept] == [
        ("status", {"message": "hi"}, "01JRUN"),
        ("status", "plain text", "01JRUN"),
        ("status", [1, 2], "01JRUN"),
    ]
    assert live["kind"] == "data" and live["data"] == [1, 2] and live["topic"] == "status"
    assert bad.status_code == 400 and "channel is 300 characters long" in bad.json()["error"]


async def test_inngest_publish_needs_a_signing_key_in_production(tmp_path: Path) -> None:
    async with (
        serve(tmp_path, config=PRODUCTION) as (url, engine),
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        params = {"channel": "c", "topic": "t"}
        refused = await client.post("/v1/realtime/publish", params=params, json=1)
        headers = {"Authorization": f"Bearer {bearer_token(SIGNING_KEY)}"}
        accepted = await client.post("/v1/realtime/publish", params=params, json=1, headers=headers)
        kept = await engine.store.read_messages(channels=["c"], after_id=0)
    assert refused.status_code == 401 and "signing key required" in refused.json()["error"]
    assert accepted.status_code == 200 and [m.data for m in kept] == [1]


async def test_a_stream_can_follow_every_message_of_one_run(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=30) as client:
        now = engine.clock.now_ms()
        await engine.store.publish(
            [
                MessageRecord(channel="order:7", topic="status", data="mine", ts=now, run_id="R1"),
                MessageRecord(channel="order:7", topic="status", data="not mine", ts=now, run_id="R2"),
                MessageRecord(channel="run:R1", topic="step", data={"id": "a"}, ts=now, run_id="R1"),
            ]
        )
        async with client.stream("GET", "/api/realtime", params={"run_id": "R1", "since": "0"}) as stream:
            got = await sse(stream.aiter_lines(), 2)
        both = await client.get("/api/realtime", params={"run_id": "R1", "channel": "order:7"})
    assert [(m["channel"], m["data"]) for _, m in got] == [("order:7", "mine"), ("run:R1", {"id": "a"})]
    assert both.status_code == 400 and "not both" in both.json()["error"]


async def test_a_teed_stream_reaches_inngest_sse_subscribers_as_raw_bytes(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=30) as client:
        token = await client.post("/v1/realtime/token", json=[{"channel": "R9", "name": "status", "kind": "run"}])
        async with client.stream("GET", "/v1/realtime/sse", params={"token": token.json()["jwt"]}) as raw:
            await asyncio.wait_for(stream_started(engine), ARRIVAL_S)

            async def body() -> AsyncIterator[bytes]:
                yield b"data: first\n\n"
                yield b"data: second\n\n"

            teed = await client.post("/v1/realtime/publish/tee", params={"channel": "R9"}, content=body())
            lines = raw.aiter_lines()
            seen = await asyncio.wait_for(_lines_until(lines, "data: second"), ARRIVAL_S)
        refused = await client.get("/v1/realtime/sse", params={"token": "nope"})
    assert teed.status_code == 200 and teed.json()["bytes"] == 27
    assert "data: first" in seen and "data: second" in seen
    assert refused.status_code == 401 and "not a channel token" in refused.json()["error"]


async def _lines_until(lines: AsyncIterator[str], last: str) -> list[str]:
    seen: list[str] = []
    async for line in lines:
        seen.append(line)
        if line == last:
            return seen
    raise AssertionError("the stream ended")
