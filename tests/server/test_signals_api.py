"""`POST /v1/signals` over a real loopback server: Inngest's request and answers, plus `hold`, and
bad input refused with a 400 naming the field."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

import outlast
from outlast import Context, Event
from outlast.server.mode import ServerConfig
from outlast.storage.base import Store
from outlast.testing import TestEngine
from tests.http import serving


def signal_app() -> outlast.Outlast:
    app = outlast.Outlast("signals", database_url="memory://")

    @app.function(id="wait", trigger="t/wait")
    async def wait(ctx: Context) -> Any:
        return await ctx.step.wait_for_signal("w", signal=str(ctx.event.data["name"]), timeout="1h")

    return app


@pytest.fixture
async def served(make_store: Callable[[], Store]) -> AsyncIterator[tuple[TestEngine, httpx.AsyncClient]]:
    async with (
        TestEngine(signal_app(), store=make_store()) as t,
        serving(t.engine) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield t, http


async def test_a_signal_resumes_the_waiting_run_and_answers_its_id(
    served: tuple[TestEngine, httpx.AsyncClient],
) -> None:
    t, http = served
    await t.send(Event(name="t/wait", data={"name": "go"}))
    await t.run_until_idle()
    [run] = t.runs()
    reply = await http.post("/v1/signals", json={"signal": "go", "data": {"ok": 1}})
    assert reply.status_code == 200 and reply.json()["data"] == {"run_id": run.id}
    await t.run_until_idle()
    assert t.runs()[0].output == {"ok": 1}
    again = await http.post("/v1/signals", json={"signal": "go"})
    assert again.status_code == 404 and again.json()["error"] == "No signal found"


async def test_a_held_signal_is_accepted_and_given_to_the_next_wait(
    served: tuple[TestEngine, httpx.AsyncClient],
) -> None:
    t, http = served
    reply = await http.post("/v1/signals", json={"signal": "later", "data": {"n": 2}, "hold": "10m"})
    assert reply.status_code == 202 and reply.json()["data"] == {"run_id": None, "held": True}
    await t.send(Event(name="t/wait", data={"name": "later"}))
    await t.run_until_idle()
    assert t.runs()[0].output == {"n": 2}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"data": {}}', "signal: the signal name is required"),
        (b'{"signal": ""}', "signal: the signal name must not be empty"),
        (b'{"signal": "s", "data": 3}', "data: expected a JSON object"),
        (b'{"signal": "s", "hold": "30d"}', "hold: must be more than 0 and at most 7 days"),
        (b'{"signal": "s", "hold": {"x": 1}}', "hold"),
    ],
)
async def test_bad_signals_are_a_400_naming_the_field(
    served: tuple[TestEngine, httpx.AsyncClient], body: bytes, fragment: str
) -> None:
    t, http = served
    reply = await http.post("/v1/signals", content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 400 and fragment in reply.json()["error"], reply.text
    await t.send(Event(name="t/wait", data={"name": "s"}))
    await t.run_until_idle()
    assert t.runs()[0].status == "running"  # nothing was held


async def test_production_requires_a_signing_key(make_store: Callable[[], Store]) -> None:
    key = "signkey-prod-" + "ab" * 32
    config = ServerConfig(mode="production", event_keys=("k",), signing_keys=(key,))
    async with (
        TestEngine(signal_app(), store=make_store()) as t,
        serving(t.engine, config) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        reply = await http.post("/v1/signals", json={"signal": "go"})
        assert reply.status_code == 401


async def test_a_function_is_paused_and_resumed_over_http(served: tuple[TestEngine, httpx.AsyncClient]) -> None:
    t, http = served
    reply = await http.post("/api/functions/signals/wait/pause", json={})
    assert reply.status_code == 200 and reply.json() == {
        "app_id": "signals",
        "function_id": "wait",
        "paused": True,
        "changed": True,
    }
    await t.send(Event(name="t/wait", data={"name": "p"}))
    await t.run_until_idle()
    assert [r.skip_reason for r in t.runs()] == ["paused"]
    resumed = await http.post("/api/functions/signals/wait/resume", json={})
    assert resumed.status_code == 200 and resumed.json()["changed"] is True
    ghost = await http.post("/api/functions/signals/ghost/pause", json={})
    assert ghost.status_code == 404 and "no live worker" in ghost.json()["error"]


async def test_the_dashboard_shows_a_signal_wait_and_pauses_from_a_button(
    served: tuple[TestEngine, httpx.AsyncClient],
) -> None:
    import re

    t, http = served
    await t.send(Event(name="t/wait", data={"name": "go<now>"}))
    await t.run_until_idle()
    [run] = t.runs()
    page = await http.get(f"/runs/{run.id}")
    assert page.status_code == 200 and "Waits for signal <code>go&lt;now&gt;</code>" in page.text  # escaped
    fn_page = await http.get("/functions/signals/wait")
    assert "<dd>Running</dd>" in fn_page.text and ">Pause</button>" in fn_page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', fn_page.text)
    assert token is not None
    pressed = await http.post(
        "/api/functions/signals/wait/pause", data={"csrf_token": token.group(1)}, follow_redirects=False
    )
    assert pressed.status_code == 303 and pressed.headers["location"] == "/functions/signals/wait"
    after = await http.get("/functions/signals/wait")
    assert "<strong>Paused</strong>" in after.text and ">Resume</button>" in after.text
