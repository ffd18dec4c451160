"""Every way of sending an event into a server goes through the engine's one send path: each is
counted in `outlast_events_received` and keeps the trace of the request that sent it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from outlast.runtime.engine import Engine
from tests.server.serving import serve

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def event_of_redirect(engine: Engine, reply: httpx.Response) -> str:
    """The event a dashboard action landed on: `/events/{id}`, or the trigger of `/runs/{id}`."""
    assert reply.status_code == 303, reply.text
    kind, _, found = reply.headers["location"].removeprefix("/").partition("/")
    if kind == "events":
        return found
    run = await engine.store.get_run(found)
    assert run is not None
    return run.event_ids[0]


async def events_received(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(r"^outlast_events_received_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


async def test_every_ingest_path_is_counted_and_keeps_the_request_trace(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url) as client:
        token = csrf((await client.get("/events")).text)
        traced = {"traceparent": TRACEPARENT}
        json = {**traced, "content-type": "application/json"}
        api_send = await client.post("/api/events", json={"name": "shop/nap"}, headers=json)
        api_invoke = await client.post("/api/functions/shop/nap/invoke", json={"data": {"for": "1h"}}, headers=json)
        form = {"name": "shop/nap", "data": "{}", "csrf_token": token}
        dashboard_send = await client.post("/events", data=form, headers=traced)
        form = {"data": '{"for": "1h"}', "csrf_token": token}
        dashboard_invoke = await client.post("/functions/shop/nap/invoke", data=form, headers=traced)
        ids = {
            "event API": (await client.post("/e/key", json={"name": "shop/nap"}, headers=traced)).json()["ids"][0],
            "JSON API send": api_send.json()["ids"][0],
            "JSON API invoke": api_invoke.json()["event_id"],
            "dashboard send": await event_of_redirect(engine, dashboard_send),
            "dashboard invoke": await event_of_redirect(engine, dashboard_invoke),
        }
        assert await events_received(client) == len(ids)
        stored = {e.id: e for e in await engine.store.get_events(list(ids.values()))}
        for how, event_id in ids.items():
            assert stored[event_id].trace == traced, f"{how} lost the request's trace"
        invoked = [stored[ids["JSON API invoke"]], stored[ids["dashboard invoke"]]]
        assert all(e.name == "inngest/function.invoked" for e in invoked)
