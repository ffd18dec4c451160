"""A NUL character, which PostgreSQL text cannot hold, is refused with a 400 naming where it is, on
every backend alike: never a 503 "retry" (SDKs retry that forever) or a 500."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.server.serving import serve

FUNCTION = {
    "id": "app-f",
    "name": "f",
    "triggers": [{"event": "t/x"}],
    "steps": {"step": {"id": "step", "runtime": {"type": "http", "url": "http://127.0.0.1:1/api?fnId=app-f"}}},
}


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"appName": "a\x00b", "url": "http://127.0.0.1:1/api", "functions": []}, "appName: must not contain a NUL"),
        ({"appName": "app", "url": "http://127.0.0.1:1/\x00", "functions": []}, "url: must not contain a NUL"),
        ({"appName": "app", "url": "http://127.0.0.1:1/api", "sdk": "py:\x00", "functions": []}, "sdk: must not"),
        (
            {"appName": "app", "url": "http://127.0.0.1:1/api", "functions": [{**FUNCTION, "id": "app-\x00"}]},
            "functions[0].id: must not contain a NUL",
        ),
        (
            {"appName": "app", "url": "http://127.0.0.1:1/api", "functions": [{**FUNCTION, "name": "\x00"}]},
            "functions[0].name: must not contain a NUL",
        ),
    ],
)
async def test_a_sync_with_a_nul_is_refused_naming_the_field(
    tmp_path: Path, store_url: str, payload: dict[str, object], fragment: str
) -> None:
    async with serve(tmp_path, database_url=store_url) as (url, engine), httpx.AsyncClient(base_url=url) as client:
        reply = await client.post("/fn/register", json=payload)
        assert reply.status_code == 400 and fragment in reply.json()["error"], reply.text
        assert await engine.store.list_apps() == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FA%00",
        "/api/runs?function=a%00",
        "/api/events/a%00",
        "/runs/a%00",
        "/?app=a%00",
        "/events?name=a%00",
        "/v1/runs/a%00/actions",
    ],
)
async def test_a_url_with_a_nul_is_refused(tmp_path: Path, store_url: str, path: str) -> None:
    async with serve(tmp_path, database_url=store_url) as (url, _), httpx.AsyncClient(base_url=url) as client:
        reply = await client.get(path)
    assert reply.status_code == 400 and "NUL character" in reply.json()["error"], reply.text
