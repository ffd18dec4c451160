"""Production mode: the dashboard and the read API need a login; every action needs CSRF proof."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from outlast.server.mode import ServerConfig
from tests.server.serving import serve

PASSWORD = "correct horse battery staple"
PRODUCTION = ServerConfig(mode="production", event_keys=("k",), dashboard_password=PASSWORD)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(tmp_path, PRODUCTION) as (url, _engine), httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield http


def token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


async def login(client: httpx.AsyncClient, password: str) -> httpx.Response:
    form = await client.get("/login")
    return await client.post("/login", data={"password": password, "next": "/events", "csrf_token": token(form.text)})


async def test_pages_and_the_api_need_a_login(client: httpx.AsyncClient) -> None:
    page = await client.get("/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV?x=1")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=%2Fruns%2F")
    for path in ("/api/runs", "/api/events", "/api/workers", "/api/stream"):
        reply = await client.get(path)
        assert reply.status_code == 401 and "log in" in reply.json()["error"], path
    assert (await client.post("/api/events", json={"name": "shop/nap"})).status_code == 401
    assert (await client.get("/api/runs", headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await client.get("/api/runs", headers={"Authorization": f"Bearer {PASSWORD}"})).status_code == 200
    assert (await client.get("/static/style.css")).status_code == 200  # assets are not secret
    assert (await client.get("/health")).status_code == 200


async def test_a_failed_login_changes_nothing_and_says_so(client: httpx.AsyncClient) -> None:
    reply = await login(client, "guess")
    assert reply.status_code == 401 and "Wrong password" in reply.text and "nothing was changed" in reply.text
    assert "outlast_session" not in reply.cookies and "outlast_session" not in client.cookies
    assert (await client.get("/api/runs")).status_code == 401


async def test_a_login_sets_a_signed_httponly_samesite_session(client: httpx.AsyncClient) -> None:
    reply = await login(client, PASSWORD)
    assert reply.status_code == 303 and reply.headers["location"] == "/events"
    cookie = next(h for h in reply.headers.get_list("set-cookie") if h.startswith("outlast_session="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert (await client.get("/events")).status_code == 200
    assert (await client.get("/api/runs")).status_code == 200
    value = client.cookies["outlast_session"]
    client.cookies.set("outlast_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await client.get("/api/runs")).status_code == 401  # a tampered session is no session


async def test_actions_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    await login(client, PASSWORD)
    forged = await client.post("/events", data={"name": "shop/nap", "data": "{}"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    wrong = await client.post("/events", data={"name": "shop/nap", "data": "{}", "csrf_token": "nope"})
    assert wrong.status_code == 403
    assert (await client.get("/api/events")).json()["events"] == []
    page = await client.get("/events")
    sent = await client.post("/events", data={"name": "shop/nap", "data": "{}", "csrf_token": token(page.text)})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/events/")
    assert len((await client.get("/api/events")).json()["events"]) == 1


async def test_logout_ends_the_session(client: httpx.AsyncClient) -> None:
    await login(client, PASSWORD)
    page = await client.get("/")
    out = await client.post("/logout", data={"csrf_token": token(page.text)})
    assert out.status_code == 303
    assert (await client.get("/api/runs")).status_code == 401


async def test_production_without_a_password_is_locked_not_open(tmp_path: Path) -> None:
    locked = ServerConfig(mode="production", event_keys=("k",))
    async with serve(tmp_path, locked) as (url, _engine), httpx.AsyncClient(base_url=url) as http:
        reply = await http.get("/api/runs", headers={"Authorization": "Bearer x"})
        assert reply.status_code == 401 and "locked" in reply.json()["error"]
        assert "dashboard is locked" in (await http.get("/login")).text


async def test_development_mode_needs_no_login_but_still_checks_csrf(tmp_path: Path) -> None:
    async with serve(tmp_path) as (url, _engine), httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/api/runs")).status_code == 200
        assert (await http.post("/events", data={"name": "shop/nap", "data": "{}"})).status_code == 403


async def test_user_data_is_escaped_in_every_page(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script>"
    async with serve(tmp_path) as (url, _engine), httpx.AsyncClient(base_url=url, timeout=10) as http:
        reply = await http.post(
            "/api/events", json={"name": "shop/order.created", "data": {"order_id": evil, "total": 5000, "note": evil}}
        )
        event_id = reply.json()["ids"][0]
        import asyncio

        for _ in range(200):
            runs = (await http.get("/api/runs")).json()["runs"]
            if runs and runs[0]["status"] == "failed":
                break
            await asyncio.sleep(0.02)
        run_id = runs[0]["id"]
        for path in (f"/runs/{run_id}", "/events", f"/events/{event_id}", "/"):
            html = (await http.get(path)).text
            assert evil not in html and "<b>" not in html, path
        assert "&lt;script&gt;" in (await http.get(f"/runs/{run_id}")).text
