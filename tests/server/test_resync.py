"""Resyncing an app is one behaviour, from the dashboard and from the JSON API alike: a failed
resync is recorded with the app (its functions stay), and an unknown app is said to be unknown."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from outlast.runtime.engine import Engine
from tests.server.serving import free_port, serve

APP = "fake-app"
JSON = {"content-type": "application/json"}


def register_payload(url: str) -> dict[str, object]:
    return {
        "url": url,
        "v": "0.1",
        "sdk": "fake:v0",
        "framework": "none",
        "appName": APP,
        "functions": [
            {
                "id": f"{APP}-go",
                "name": "go",
                "triggers": [{"event": "fake/go"}],
                "steps": {"step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": url}}},
            }
        ],
    }


@pytest.fixture
async def gone_app(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Engine]]:
    """A server with an app synced from a URL where nothing listens any more."""
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url) as client:
        app_url = f"http://127.0.0.1:{free_port()}/api/inngest"
        assert (await client.post("/fn/register", json=register_payload(app_url))).status_code == 200
        app = await engine.store.get_app(APP)
        assert app is not None and app.error is None
        yield client, engine


async def resync_from_dashboard(client: httpx.AsyncClient, app_id: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/apps")).text)
    assert token
    reply = await client.post(f"/apps/{app_id}/resync", data={"csrf_token": token.group(1)})
    assert reply.status_code == 303 and reply.headers["location"] == "/apps"
    return (await client.get("/apps")).text


async def test_a_failed_resync_from_the_dashboard_is_recorded_with_the_app(
    gone_app: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, engine = gone_app
    page = await resync_from_dashboard(client, APP)
    assert "could not reach" in page
    app = await engine.store.get_app(APP)
    assert app is not None and app.error is not None and "could not reach" in app.error
    listed = (await client.get("/api/apps")).json()["apps"]
    assert [(a["error"], a["functions"]) for a in listed if a["id"] == APP] == [(app.error, ["go"])]


async def test_a_failed_resync_from_the_api_is_recorded_with_the_app(
    gone_app: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, engine = gone_app
    reply = await client.post(f"/api/apps/{APP}/resync", json={}, headers=JSON)
    assert reply.status_code == 502 and not reply.json()["ok"] and "could not reach" in reply.json()["message"]
    app = await engine.store.get_app(APP)
    assert app is not None and app.error is not None and "could not reach" in app.error
    listed = (await client.get("/api/apps")).json()["apps"]
    assert [a["error"] for a in listed if a["id"] == APP] == [app.error]


async def test_resyncing_an_unknown_app_says_so_and_records_nothing(
    gone_app: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, engine = gone_app
    reply = await client.post("/api/apps/nope/resync", json={}, headers=JSON)
    assert reply.status_code == 404 and "no synced app 'nope'" in reply.json()["error"]
    assert "has no URL to sync from" in await resync_from_dashboard(client, "nope")
    assert [a.id for a in await engine.store.list_apps()] == [APP]
