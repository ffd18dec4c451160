"""The read API (`/api/`) over a real loopback server with workers: listings, cursors, filters,
search, a run's trace, actions, and its OpenAPI description."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from outlast.runtime.engine import Engine
from tests.server.serving import serve, wait_for

JSON = {"content-type": "application/json"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Engine]]:
    async with serve(tmp_path) as (url, engine), httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client, engine


async def send(client: httpx.AsyncClient, name: str, data: dict[str, Any]) -> str:
    reply = await client.post("/api/events", json={"name": name, "data": data})
    assert reply.status_code == 200, reply.text
    return str(reply.json()["ids"][0])


async def settled(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    async def done() -> bool:
        runs = (await client.get("/api/runs", params={"limit": 500})).json()["runs"]
        return len(runs) >= count and all(r["status"] not in ("queued", "running") for r in runs)

    await wait_for(done)
    return list((await client.get("/api/runs", params={"limit": 500})).json()["runs"])


async def test_runs_are_listed_newest_first_with_a_cursor_filters_and_counts(
    api: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, _ = api
    for total in (10, 20, 30, 5000, 40):
        await send(client, "shop/order.created", {"order_id": f"o{total}", "total": total})
    runs = await settled(client, 5)
    assert [r["id"] for r in runs] == sorted((r["id"] for r in runs), reverse=True)
    first = (await client.get("/api/runs", params={"limit": 2})).json()
    second = (await client.get("/api/runs", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [r["id"] for r in first["runs"] + second["runs"]] == [r["id"] for r in runs[:4]]
    assert first["counts"]["counts"]["completed"] == 4 and first["counts"]["counts"]["failed"] == 1
    failed = (await client.get("/api/runs", params={"status": "failed", "function": "shop/process-order"})).json()
    assert [r["status"] for r in failed["runs"]] == ["failed"]
    assert failed["runs"][0]["error"]["message"] == "card declined: 5000 is over the card's limit"
    recent = (await client.get("/api/runs", params={"range": "15m", "app": "nobody"})).json()
    assert recent["runs"] == [] and sum(recent["counts"]["counts"].values()) == 0


async def test_search_finds_a_run_by_id_by_event_id_and_by_expression(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    big = await send(client, "shop/order.created", {"order_id": "big", "total": 900})
    await send(client, "shop/order.created", {"order_id": "small", "total": 3})
    runs = await settled(client, 2)
    by_event = (await client.get("/api/runs", params={"q": big})).json()
    assert by_event["search"] == "event" and len(by_event["runs"]) == 1
    run_id = by_event["runs"][0]["id"]
    by_id = (await client.get("/api/runs", params={"q": run_id.lower()})).json()
    assert by_id["search"] == "run" and [r["id"] for r in by_id["runs"]] == [run_id]
    expr = await client.get("/api/runs", params={"q": 'event.data.total > 100 && output.status == "confirmed"'})
    assert expr.status_code == 200 and [r["id"] for r in expr.json()["runs"]] == [run_id]
    assert expr.json()["scanned"] == len(runs)
    bad = await client.get("/api/runs", params={"q": "event.data.total >"})
    assert bad.status_code == 400 and bad.json()["error"].startswith("q: invalid expression")
    unknown = await client.get("/api/runs", params={"q": "order.total > 1"})  # not a variable a search has
    assert unknown.status_code == 400 and "order" in unknown.json()["error"]


async def test_a_run_comes_with_its_steps_events_logs_and_links(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    await send(client, "shop/order.created", {"order_id": "o1", "total": 12})
    [run] = await settled(client, 1)
    body = (await client.get(f"/api/runs/{run['id']}")).json()
    assert [s["id"] for s in body["run"]["steps"]] == ["get-user", "price", "charge", "email-receipt"]
    assert body["run"]["output"] == {"status": "confirmed", "payment": {"charged": 12, "currency": "EUR"}}
    assert body["events"][0]["data"] == {"order_id": "o1", "total": 12}
    assert body["logs"][0]["message"] == "processing order o1"
    assert body["links"] == {
        "rerun_of": None,
        "rerun_from_step": None,
        "edited_output": False,
        "reruns": [],
        "children": [],
    }
    missing = await client.get("/api/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert missing.status_code == 404 and "no run" in missing.json()["error"]


async def test_rerun_from_a_step_with_an_edited_output_through_the_api(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    await send(client, "shop/order.created", {"order_id": "o1", "total": 5000})
    [failed] = await settled(client, 1)
    reply = await client.post(
        f"/api/runs/{failed['id']}/rerun", json={"from_step": "charge", "output": {"charged": 1, "currency": "EUR"}}
    )
    assert reply.status_code == 200, reply.text
    new_id = reply.json()["run_id"]
    runs = await settled(client, 2)
    new = next(r for r in runs if r["id"] == new_id)
    assert new["status"] == "completed" and new["output"]["payment"] == {"charged": 1, "currency": "EUR"}
    links = (await client.get(f"/api/runs/{new_id}")).json()["links"]
    assert links["rerun_of"] == failed["id"] and links["edited_output"] is True
    refused = await client.post(f"/api/runs/{failed['id']}/rerun", json={"output": 1})
    assert refused.status_code == 400 and "needs from_step" in refused.json()["error"]


async def test_cancel_a_sleeping_run_and_see_what_the_event_did(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    event_id = await send(client, "shop/nap", {})

    async def sleeping() -> bool:
        runs = (await client.get("/api/runs")).json()["runs"]
        return bool(runs) and any(
            s["status"] == "sleeping" for s in (await client.get(f"/api/runs/{runs[0]['id']}")).json()["run"]["steps"]
        )

    await wait_for(sleeping)
    run_id = (await client.get("/api/runs")).json()["runs"][0]["id"]
    assert (await client.post(f"/api/runs/{run_id}/cancel", json={})).json()["cancelled"] is True
    again = await client.post(f"/api/runs/{run_id}/cancel", json={})
    assert again.status_code == 400 and "not active" in again.json()["error"]
    event = (await client.get(f"/api/events/{event_id}")).json()
    assert event["effects"] == [
        {"run_id": run_id, "effect": "started", "app_id": "shop", "function_id": "nap", "status": "cancelled"}
    ]
    listed = (await client.get("/api/events", params={"name": "shop/nap"})).json()["events"]
    assert [e["id"] for e in listed] == [event_id] and listed[0]["effects"][0]["status"] == "cancelled"


async def test_functions_metrics_workers_apps_and_invoke(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    reply = await client.post("/api/functions/shop/ship/invoke", json={"data": {"order_id": "x"}})
    assert reply.status_code == 200
    [run] = await settled(client, 1)
    assert run["function_id"] == "ship" and run["output"] == {"label": "L-x"}
    functions = {f["id"]: f for f in (await client.get("/api/functions")).json()["functions"]}
    assert set(functions) == {"await-payment", "fulfil", "nap", "process-order", "ship"}
    assert functions["ship"]["stats"]["hour"]["runs"] == 1
    assert functions["process-order"]["config"]["triggers"] == [{"event": "shop/order.created", "if": None}]
    metrics = (await client.get("/api/metrics")).json()["functions"]
    assert {m["function_id"]: m["day"]["runs"] for m in metrics}["ship"] == 1

    async def announced() -> bool:
        return bool((await client.get("/api/workers")).json()["workers"])

    await wait_for(announced)
    [worker] = (await client.get("/api/workers")).json()["workers"]
    assert worker["app_id"] == "shop" and worker["pid"] > 0
    apps = (await client.get("/api/apps")).json()["apps"]
    assert [a["id"] for a in apps] == ["shop"] and "ship" in apps[0]["functions"]
    unknown = await client.post("/api/functions/shop/nope/invoke", json={"data": {}})
    assert unknown.status_code == 400 and "no function 'nope'" in unknown.json()["error"]


async def test_bad_input_is_refused_with_a_message_naming_it(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    for params, fragment in [
        ({"status": "done"}, "status: expected one of"),
        ({"range": "2y"}, "range:"),
        ({"cursor": "x"}, "cursor: not a run id"),
        ({"limit": "0"}, "limit:"),
        ({"since": "yesterday"}, "since: expected a time"),
    ]:
        reply = await client.get("/api/runs", params=params)
        assert reply.status_code == 400 and fragment in reply.json()["error"], (params, reply.text)
    not_json = await client.post("/api/events", content=b"{oops", headers=JSON)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]
    bad_event = await client.post("/api/events", json={"data": {}})
    assert bad_event.status_code == 400 and "event[0].name" in bad_event.json()["error"]
    form = await client.post("/api/events", data={"name": "x"})
    assert form.status_code == 403 and "JSON body" in form.json()["error"]
    assert (await client.get("/api/runs")).json()["runs"] == []


@pytest.mark.parametrize("value", ["253402300800000", "99999999999999999999999", "9999-12-31T23:59"])
@pytest.mark.parametrize("name", ["since", "until"])
async def test_a_time_beyond_year_9999_is_refused_by_the_api_and_the_dashboard(
    api: tuple[httpx.AsyncClient, Engine], name: str, value: str
) -> None:
    client, _ = api
    reply = await client.get("/api/runs", params={name: value})
    page = await client.get("/", params={name: value})
    message = f"{name}: expected a time from 1970-01-01 to 9999-12-30"
    assert reply.status_code == 400 and message in reply.json()["error"], reply.text
    assert page.status_code == 400 and message in page.text


async def test_openapi_describes_every_api_route(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    spec = (await client.get("/api/openapi.json")).json()
    assert spec["openapi"].startswith("3.") and spec["info"]["title"] == "Outlast read API"
    from outlast.server import api as api_module

    served = {getattr(r, "path", "") for r in api_module.ROUTES} - {"/api/openapi.json"}
    assert served == set(spec["paths"])


async def test_bulk_replay_reruns_the_failed_runs_of_a_function(api: tuple[httpx.AsyncClient, Engine]) -> None:
    client, _ = api
    for total in (2000, 3000, 10):
        await send(client, "shop/order.created", {"total": total})
    await settled(client, 3)
    job = await client.post("/api/bulk", json={"action": "replay", "function": "shop/process-order", "range": "1h"})
    assert job.status_code == 202 and job.json()["total"] == 2

    async def done() -> bool:
        return bool((await client.get(f"/api/bulk/{job.json()['id']}")).json()["state"] == "done")

    await wait_for(done)
    assert (await client.get(f"/api/bulk/{job.json()['id']}")).json()["done"] == 2
    runs = await settled(client, 5)
    assert sum(1 for r in runs if r["status"] == "failed") == 4


async def test_bulk_replay_reruns_the_runs_skipped_while_the_function_was_paused(
    api: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, _ = api
    paused = await client.post("/api/functions/shop/process-order/pause", json={})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    for total in (10, 20):
        await send(client, "shop/order.created", {"total": total})
    assert [r["status"] for r in await settled(client, 2)] == ["skipped", "skipped"]
    refused = await client.post(
        "/api/bulk", json={"action": "replay", "function": "shop/process-order", "range": "1h", "status": "completed"}
    )
    assert refused.status_code == 400 and "not 'completed'" in refused.json()["error"]
    assert (await client.post("/api/functions/shop/process-order/resume", json={})).status_code == 200
    job = await client.post(
        "/api/bulk", json={"action": "replay", "function": "shop/process-order", "range": "1h", "status": "skipped"}
    )
    assert job.status_code == 202 and job.json()["total"] == 2

    async def done() -> bool:
        return bool((await client.get(f"/api/bulk/{job.json()['id']}")).json()["state"] == "done")

    await wait_for(done)
    runs = await settled(client, 4)
    assert sorted(r["status"] for r in runs) == ["completed", "completed", "skipped", "skipped"]


async def test_apps_sync_by_url_reports_failures_and_remove_forgets_functions(
    api: tuple[httpx.AsyncClient, Engine],
) -> None:
    client, _ = api
    bad = await client.post("/api/apps", json={"url": "ftp://example"})
    assert bad.status_code == 400 and "serve URL" in bad.json()["error"]
    from tests.server.serving import free_port

    unreachable = await client.post("/api/apps", json={"url": f"http://127.0.0.1:{free_port()}/api/inngest"})
    assert unreachable.status_code == 502 and "could not reach" in unreachable.json()["message"]
    local = await client.delete("/api/apps/shop")  # served by local workers: not ours to forget
    assert local.status_code == 404 and "no synced app 'shop'" in local.json()["error"]
    assert (await client.get("/api/functions")).json()["functions"] != []
