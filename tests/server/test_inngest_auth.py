"""Production mode: Inngest's REST API and GraphQL subset require the bearer form of a signing key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from outlast.protocol.signing import bearer_token
from outlast.server.app import create_app
from outlast.server.mode import ServerConfig
from outlast.storage import open_store
from outlast.testing import TestEngine
from tests.server.inngest_served import EVENT_KEY, SIGNING_KEY, serving, shop_app

OTHER_KEY = "signkey-prod-fedcba9876543210fedcba9876543210"
PRODUCTION = ServerConfig(mode="production", event_keys=(EVENT_KEY,), signing_keys=(SIGNING_KEY, OTHER_KEY))
GQL = {"query": "{ functions { slug } }"}


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[tuple[TestEngine, httpx.AsyncClient]]:
    async with (
        TestEngine(shop_app(), store=open_store(f"sqlite:///{tmp_path}/p.db")) as t,
        serving(t.engine, PRODUCTION) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield t, http


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer_token(key)}"}


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({}, "signing key required"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer scheme"),
        ({"Authorization": "Bearer signkey-test-00"}, "not accepted"),
        ({"Authorization": f"Bearer {SIGNING_KEY}"}, "not accepted"),  # the raw key is not its bearer form
    ],
)
async def test_a_missing_or_wrong_key_is_refused_with_a_401_saying_so(
    production: tuple[TestEngine, httpx.AsyncClient], headers: dict[str, str], fragment: str
) -> None:
    t, http = production
    [event_id] = await t.send({"name": "shop/wait", "data": {"id": 1}})
    await t.run_until_idle()
    for method, path, body in [
        ("GET", "/v1/events", None),
        ("GET", f"/v1/events/{event_id}/runs", None),
        ("DELETE", f"/v1/runs/{t.runs()[0].id}", None),
        (
            "POST",
            "/v1/cancellations",
            {"app_id": "shop", "function_id": "waiter", "started_before": "2020-01-01T00:00:00Z"},
        ),
    ]:
        reply = await http.request(method, path, headers=headers, json=body)
        assert reply.status_code == 401, (path, reply.text)
        assert fragment in reply.json()["error"] and reply.json()["status"] == 401
        assert SIGNING_KEY.split("-")[-1] not in reply.text
    reply = await http.post("/v0/gql", headers=headers, json=GQL)
    assert reply.status_code == 401 and fragment in reply.json()["errors"][0]["message"]
    assert [r.status for r in t.runs()] == ["running"]  # nothing was cancelled


async def test_the_bearer_form_of_any_signing_key_is_accepted(production: tuple[TestEngine, httpx.AsyncClient]) -> None:
    t, http = production
    [event_id] = await t.send({"name": "shop/wait", "data": {"id": 1}})
    await t.run_until_idle()
    for key in (SIGNING_KEY, OTHER_KEY):  # rotation: the old and the new key both work
        reply = await http.get("/v1/events", headers=bearer(key))
        assert reply.status_code == 200 and reply.json()["data"][0]["internal_id"] == event_id
        reply = await http.post("/v0/gql", headers=bearer(key), json=GQL)
        assert reply.status_code == 200 and "shop-waiter" in {f["slug"] for f in reply.json()["data"]["functions"]}
    reply = await http.delete(f"/v1/runs/{t.runs()[0].id}", headers=bearer(OTHER_KEY))
    assert reply.status_code == 200 and reply.json()["data"]["cancelled"] is True


async def test_development_mode_needs_no_key(tmp_path: Path) -> None:
    async with (
        TestEngine(shop_app(), store=open_store(f"sqlite:///{tmp_path}/d.db")) as t,
        serving(t.engine) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        assert (await http.get("/v1/events")).status_code == 200
        assert (await http.post("/v0/gql", json=GQL)).status_code == 200


async def test_a_signing_key_that_is_not_one_stops_the_server_from_starting(tmp_path: Path) -> None:
    async with TestEngine(shop_app(), store=open_store(f"sqlite:///{tmp_path}/n.db")) as t:
        with pytest.raises(ValueError, match="not hex"):
            create_app(
                t.engine, ServerConfig(mode="production", event_keys=(EVENT_KEY,), signing_keys=("signkey-x-nothex",))
            )


async def test_production_without_a_signing_key_refuses_every_api_request(tmp_path: Path) -> None:
    config = ServerConfig(mode="production", event_keys=(EVENT_KEY,))
    async with (
        TestEngine(shop_app(), store=open_store(f"sqlite:///{tmp_path}/n.db")) as t,
        serving(t.engine, config) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        reply = await http.get("/v1/events", headers=bearer(SIGNING_KEY))
        assert reply.status_code == 401 and "no signing key configured" in reply.json()["error"]
        reply = await http.post("/v0/gql", headers=bearer(SIGNING_KEY), json=GQL)
        assert reply.status_code == 401 and "no signing key configured" in reply.json()["errors"][0]["message"]
        assert (await http.post(f"/e/{EVENT_KEY}", json={"name": "shop/noop"})).status_code == 200
