"""Streaming Durable Endpoints: `stream.push` / `stream.pipe` on the official `inngest@4`
(tests/interop/js4/endpoint_streams.js, served by `inngest/node`) against a real `outlast dev`
and a signed `outlast start`. A caller that accepts `text/event-stream` gets the chunks straight
from the endpoint while the request runs it; once the run goes on in the background, the caller
follows the stream's `inngest.redirect_info` to Outlast, which relays what each background
attempt streams (through Outlast's realtime), up to the endpoint's response. The official
client (`fetchWithStream`) follows that redirect itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL, pg_database
from tests.interop.harness import JS4_APP_DIR, SIGNING_KEY, Outlast, SdkApp, effects, free_port, node_ready, sdk_env
from tests.interop.test_endpoints import TIMEOUT, _ended

SSE = {"Accept": "text/event-stream"}


def streams_app(tmp: Path, outlast: Outlast, *, production: bool = False) -> SdkApp:
    node_ready(JS4_APP_DIR)
    port = free_port()
    env = {**sdk_env(tmp, outlast, production=production), "PORT": str(port)}
    return SdkApp(
        "js4-endpoint-streams", ["node", "endpoint_streams.js"], cwd=JS4_APP_DIR, env=env, tmp=tmp, port=port, path=""
    )


@pytest.fixture
def app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    served = streams_app(tmp_path, outlast)
    yield served
    served.proc.stop()


@pytest.fixture(params=["dev", "production", "postgres"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outlast]:
    """`outlast dev` (on SQLite, or on PostgreSQL), or a signed `outlast start`."""
    env = {"OUTLAST_LEASE_MS": "5000"}
    if request.param == "production":
        env.update(INNGEST_SIGNING_KEY=SIGNING_KEY, OUTLAST_EVENT_KEY="endpoint-event-key")
        env.update(OUTLAST_DASHBOARD_PASSWORD="dashboard-secret")
    if request.param == "postgres":
        if not PG_URL:
            pytest.skip("OUTLAST_TEST_POSTGRES_URL is not set")
        env.update(OUTLAST_DATABASE_URL=pg_database())
    served = Outlast(tmp_path, mode="start" if request.param == "production" else "dev", env=env)
    yield served
    await served.close()


def _events(text: str) -> list[tuple[str, Any]]:
    """The SSE events of a stream as (event, JSON data)."""
    events: list[tuple[str, Any]] = []
    name, data = "message", ""
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "":
            if data:
                events.append((name, json.loads(data)))
            name, data = "message", ""
    return events


async def _stream(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    """A streamed reply read to its end: the endpoint's own stream, or Outlast's relay, which
    ends after the endpoint's response."""
    reply = await asyncio.wait_for(client.get(url, headers=SSE), TIMEOUT)
    return reply, _events(reply.text)


def _chunks(events: list[tuple[str, Any]]) -> list[Any]:
    return [data["data"] for name, data in events if name == "inngest.stream"]


def _response(events: list[tuple[str, Any]]) -> tuple[int, Any]:
    name, last = events[-1]
    assert name == "inngest.response" and last["status"] == "succeeded", events
    return last["response"]["statusCode"], json.loads(last["response"]["body"])


async def test_a_caller_gets_the_chunks_an_endpoint_streams(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        reply, events = await _stream(client, f"{app.url}/sync")
        plain = await client.get(f"{app.url}/sync")  # a caller that does not stream gets the response
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert events[0][0] == "inngest.metadata" and _chunks(events) == ["one", {"two": 2}]
    assert _response(events) == (200, {"done": "sync"})
    (redirect,) = [data for name, data in events if name == "inngest.redirect_info"]
    assert redirect["url"].startswith(f"{outlast.url}/v1/realtime/sse?token=")
    assert (plain.status_code, plain.json()) == (200, {"done": "sync"})
    runs = await _ended(outlast, "get-sync", 2)
    assert all(r.status == "completed" and [s.id for s in r.steps] == ["write"] for r in runs), runs
    assert effects(tmp_path) == {"write": 2}


async def test_chunks_streamed_in_the_background_reach_the_caller_through_its_redirect(
    outlast: Outlast, app: SdkApp, tmp_path: Path
) -> None:
    """The request streams until the sleep, then the stream ends with its redirect; the caller
    follows it, here only once the run has ended: Outlast keeps the stream, so nothing is lost."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        _, direct = await _stream(client, f"{app.url}/async")
        assert _chunks(direct) == ["before the nap"] and direct[-1][0] == "inngest.redirect_info", direct
        (run,) = await _ended(outlast, "get-async")
        _, relayed = await _stream(client, direct[-1][1]["url"])
    assert run.status == "completed" and [s.id for s in run.steps] == ["before", "nap", "after"]
    assert _chunks(relayed) == ["after the nap", "piped ", "café"]
    assert {name for name, _ in relayed} >= {"inngest.metadata", "inngest.commit"}
    assert _response(relayed) == (200, {"done": "async"})
    assert effects(tmp_path) == {"before": 1, "after": 1}


async def _fetch_with_stream(url: str) -> list[dict[str, Any]]:
    """What the official client (`fetchWithStream`, tests/interop/js4/fetch_stream.js) reports."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        "fetch_stream.js",
        url,
        cwd=JS4_APP_DIR,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_the_official_client_follows_the_stream_into_the_background(server: Outlast, tmp_path: Path) -> None:
    """In production the background attempts tee their stream with the signing key."""
    served = streams_app(tmp_path, server, production="INNGEST_SIGNING_KEY" in server.env)
    try:
        said = await _fetch_with_stream(f"{served.url}/async")
    finally:
        served.proc.stop()
    assert [line["data"] for line in said if "data" in line] == ["before the nap", "after the nap", "piped ", "café"]
    assert said[-1] == {"response": {"status": 200, "body": {"done": "async"}}}
    assert len({line["metadata"] for line in said if "metadata" in line}) == 1  # one run throughout


async def test_a_failed_attempts_chunks_are_rolled_back_and_the_retry_streams_again(
    outlast: Outlast, app: SdkApp, tmp_path: Path
) -> None:
    said = [line for line in await _fetch_with_stream(f"{app.url}/retry") if "metadata" not in line]
    step = said[1].get("rollback")
    assert said == [
        {"data": "attempt 1"},
        {"rollback": step},  # told by the endpoint itself, before the run went to the background
        {"data": "attempt 2"},  # relayed by Outlast from the retry
        {"commit": step},
        {"response": {"status": 200, "body": {"value": 2}}},
    ], said
    (run,) = await _ended(outlast, "get-retry")
    assert run.status == "completed" and [(s.id, s.attempts) for s in run.steps] == [("flaky", 2)]
    assert effects(tmp_path) == {"flaky": 2}
