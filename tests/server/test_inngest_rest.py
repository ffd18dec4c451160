"""Inngest's REST API (`/v1/...`) over a real loopback server, against runs of local functions
driven on a virtual clock, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from outlast.core.models import EventFilter, RunFilter
from outlast.errors import StoreError
from outlast.runtime import bulk_cancel
from outlast.server.inngest_shapes import iso
from outlast.storage import open_store
from outlast.storage.base import Store
from outlast.testing import TestEngine
from tests.server.inngest_served import serving, settle, shop_app


@dataclass
class Served:
    t: TestEngine
    http: httpx.AsyncClient

    async def send(self, *events: dict[str, Any]) -> list[str]:
        reply = await self.http.post("/e/any-key", json=list(events))
        assert reply.status_code == 200, reply.text
        ids: list[str] = reply.json()["ids"]
        return ids

    async def get(self, path: str, **params: Any) -> Any:
        reply = await self.http.get(path, params=params)
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    def run_of(self, event_id: str) -> Any:
        [run] = self.t.runs(event_id=event_id)
        return run


@asynccontextmanager
async def serve(store: Store) -> AsyncIterator[Served]:
    async with (
        TestEngine(shop_app(), store=store) as t,
        serving(t.engine) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield Served(t, http)


@pytest.fixture
async def served(make_store: Callable[[], Store]) -> AsyncIterator[Served]:
    """On every backend: for what the SQL decides."""
    async with serve(make_store()) as s:
        yield s


@pytest.fixture
async def on_sqlite(tmp_path: Path) -> AsyncIterator[Served]:
    """On one backend: for what the server decides (parsing, errors)."""
    async with serve(open_store(f"sqlite:///{tmp_path}/api.db")) as s:
        yield s


async def test_events_are_listed_by_name_with_the_ids_send_returned(served: Served) -> None:
    ids = await served.send(
        {"name": "shop/checkout", "data": {"sku": "a"}},
        {"name": "shop/wait", "data": {"id": 1}},
        {"name": "shop/checkout", "data": {"sku": "b"}, "id": "order-b"},
    )
    await settle(served.t)
    data = await served.get("/v1/events", name="shop/checkout")
    assert [e["internal_id"] for e in data] == [ids[2], ids[0]]  # newest first
    assert data[0]["id"] == "order-b" and data[1]["id"] == ids[0]  # the sender's id, else the internal one
    assert data[1]["name"] == "shop/checkout" and data[1]["data"] == {"sku": "a"} and isinstance(data[1]["ts"], int)
    assert data[1]["received_at"] == iso(served.t.runs(event_id=ids[0])[0].created_at)
    everything = await served.get("/v1/events")
    assert {e["internal_id"] for e in everything} == set(ids)  # system events (function.finished) left out


async def test_events_page_with_a_cursor_and_filter_by_receive_time(served: Served) -> None:
    ids = []
    for n in range(5):
        ids += await served.send({"name": "shop/noop", "data": {"n": n}})
        served.t.advance("1m")
    page1 = await served.get("/v1/events", name="shop/noop", limit=2)
    page2 = await served.get("/v1/events", name="shop/noop", limit=2, cursor=page1[-1]["internal_id"])
    page3 = await served.get("/v1/events", name="shop/noop", limit=2, cursor=page2[-1]["internal_id"])
    assert [e["internal_id"] for e in page1 + page2 + page3] == ids[::-1]
    start = served.t.now_ms() - 5 * 60_000
    window = await served.get(
        "/v1/events", name="shop/noop", received_after=iso(start + 60_000), received_before=iso(start + 3 * 60_000)
    )
    assert [e["data"]["n"] for e in window] == [3, 2, 1]
    served.t.advance("2h")  # by default only the last hour is listed, as on Inngest
    assert await served.get("/v1/events", name="shop/noop") == []
    assert len(await served.get("/v1/events", name="shop/noop", received_after=iso(start))) == 5


async def test_an_event_and_the_runs_it_started(served: Served) -> None:
    [checkout, flaky] = await served.send({"name": "shop/checkout", "data": {"sku": "a"}}, {"name": "shop/flaky"})
    await settle(served.t)
    event = await served.get(f"/v1/events/{checkout}")
    assert event["internal_id"] == checkout and event["data"] == {"sku": "a"}
    [run] = await served.get(f"/v1/events/{checkout}/runs")
    assert run["run_id"] == served.run_of(checkout).id and run["event_id"] == checkout
    assert run["status"] == "Completed" and run["output"] == {"ok": True, "sku": "a"}
    assert run["ended_at"] is not None and run["run_started_at"] is not None
    [failed] = await served.get(f"/v1/events/{flaky.lower()}/runs")  # ids are case-insensitive
    assert failed["status"] == "Failed" and failed["output"]["message"].endswith("A failed!")
    nothing = (await served.send({"name": "shop/nobody-listens"}))[0]
    assert await served.get(f"/v1/events/{nothing}/runs") == []


async def test_a_run_by_id_with_its_status_and_output(served: Served) -> None:
    [wait] = await served.send({"name": "shop/wait", "data": {"id": 7}})
    await served.t.run_until_idle()
    run_id = served.run_of(wait).id
    run = await served.get(f"/v1/runs/{run_id}")
    assert run["status"] == "Running" and "output" not in run and run["ended_at"] is None
    await served.send({"name": "shop/paid", "data": {"id": 7}})
    await served.t.run_until_idle()
    run = await served.get(f"/v1/runs/{run_id}")
    assert run["status"] == "Completed" and run["output"]["data"] == {"id": 7}


async def test_a_runs_jobs_are_its_queue_items(served: Served) -> None:
    [checkout, wait] = await served.send({"name": "shop/checkout"}, {"name": "shop/wait", "data": {"id": 1}})
    queued = served.run_of(checkout).id
    [job] = await served.get(f"/v1/runs/{queued}/jobs")
    assert job["kind"] == "start" and job["attempt"] == 0 and job["Raw"]["run_id"] == queued
    await served.t.run_until_idle()  # checkout now sleeps, waiter waits
    [sleeping] = await served.get(f"/v1/runs/{queued}/jobs")
    assert sleeping["kind"] == "sleep" and sleeping["at"] == iso(served.t.now_ms() + 60_000)
    [waiting] = await served.get(f"/v1/runs/{served.run_of(wait).id}/jobs")
    assert waiting["kind"] == "pause" and waiting["at"] == iso(served.t.now_ms() + 3_600_000)
    assert {sleeping["position"], waiting["position"]} == {0, 1}  # the sleep is due first
    await settle(served.t)
    assert await served.get(f"/v1/runs/{queued}/jobs") == []


async def test_delete_cancels_a_run_once(served: Served) -> None:
    [wait] = await served.send({"name": "shop/wait", "data": {"id": 1}})
    await served.t.run_until_idle()
    run_id = served.run_of(wait).id
    reply = await served.http.delete(f"/v1/runs/{run_id}")
    assert reply.status_code == 200
    assert reply.json()["data"] == {"run_id": run_id, "cancelled": True, "status": "Cancelled"}
    assert (await served.get(f"/v1/runs/{run_id}"))["status"] == "Cancelled"
    cancelled_events = await served.t.store.list_events(EventFilter(name="inngest/function.cancelled"))
    assert [e.data["run_id"] for e in cancelled_events] == [run_id]
    again = await served.http.delete(f"/v1/runs/{run_id}")
    assert again.status_code == 200 and again.json()["data"]["cancelled"] is False
    await served.send({"name": "shop/paid", "data": {"id": 1}})
    await served.t.run_until_idle()
    assert served.t.get_run(run_id).status == "cancelled"  # type: ignore[union-attr]


async def test_bulk_cancellation_by_function_time_window_and_expression(served: Served) -> None:
    early = await served.send({"name": "shop/wait", "data": {"id": 0, "user": "u1"}})
    served.t.advance("10m")
    start = served.t.now_ms()
    ids = await served.send(*[{"name": "shop/wait", "data": {"id": n, "user": f"u{n % 2}"}} for n in range(1, 7)])
    other = await served.send({"name": "shop/checkout"})
    await served.t.run_until_idle()
    served.t.advance("1m")
    reply = await served.http.post(
        "/v1/cancellations",
        json={
            "app_id": "shop",
            "function_id": "waiter",
            "started_after": iso(start),
            "started_before": iso(served.t.now_ms()),
            "if": "event.data.user == 'u1'",
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()["data"]
    assert body["cancelled"] == 3 and body["has_more"] is False
    assert body["function_id"] == "shop-waiter" and body["kind"] == "bulk_run" and body["cause"] == "API"
    assert body["if"] == "event.data.user == 'u1'" and body["started_after"] == iso(start)
    status = {eid: served.run_of(eid).status for eid in early + ids + other}
    assert [status[eid] for eid in ids] == ["cancelled", "running"] * 3
    assert status[early[0]] == "running"  # before the window
    assert status[other[0]] != "cancelled"  # another function
    # the composite slug names the function too; no expression cancels the whole window
    reply = await served.http.post(
        "/v1/cancellations",
        json={"app_id": "shop", "function_id": "shop-waiter", "started_before": iso(served.t.now_ms())},
    )
    assert reply.json()["data"]["cancelled"] == 4
    assert all(r.status == "cancelled" for r in served.t.runs(function_id="waiter"))


async def test_bulk_cancellation_is_bounded_per_request(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk_cancel, "MAX_RUNS_PER_CALL", 3)
    monkeypatch.setattr(bulk_cancel, "PAGE_SIZE", 2)
    await served.send(*[{"name": "shop/wait", "data": {"id": n}} for n in range(5)])
    await served.t.run_until_idle()
    body = {"app_id": "shop", "function_id": "waiter", "started_before": iso(served.t.now_ms() + 1)}
    first = (await served.http.post("/v1/cancellations", json=body)).json()["data"]
    assert (first["cancelled"], first["has_more"]) == (3, True)
    second = (await served.http.post("/v1/cancellations", json=body)).json()["data"]
    assert (second["cancelled"], second["has_more"]) == (2, False)
    assert [r.status for r in served.t.runs(function_id="waiter")] == ["cancelled"] * 5


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"function_id": "waiter", "started_before": "2020-01-01T00:00:00Z"}, 400, "app_id is required"),
        ({"app_id": "shop", "function_id": "waiter"}, 400, "started_before is required"),
        ({"app_id": "shop", "function_id": "waiter", "started_before": "yesterday"}, 400, "started_before"),
        ({"app_id": "shop", "function_id": "waiter", "started_before": "2999-01-01T00:00:00Z"}, 400, "in the past"),
        (
            {
                "app_id": "shop",
                "function_id": "waiter",
                "started_before": "2020-01-01T00:00:00Z",
                "started_after": "2021-01-01T00:00:00Z",
            },
            400,
            "started_after must be before",
        ),
        (
            {
                "app_id": "shop",
                "function_id": "waiter",
                "started_before": "2020-01-01T00:00:00Z",
                "if": "event.data. ==",
            },
            400,
            "invalid expression",
        ),
        (
            {"app_id": "shop", "function_id": "waiter", "started_before": "2020-01-01T00:00:00Z", "if": "foo.bar == 1"},
            400,
            "foo",
        ),
        (
            {
                "app_id": "shop",
                "function_id": "waiter",
                "started_before": "2020-01-01T00:00:00Z",
                "if": "event.data.x + 1",
            },
            400,
            "true or false",
        ),
        (
            {"app_id": "shop", "function_id": "nope", "started_before": "2020-01-01T00:00:00Z"},
            404,
            "function not found",
        ),
        ({"app_id": "shop", "function_id": 3, "started_before": "2020-01-01T00:00:00Z"}, 400, "function_id must be"),
        ([1, 2], 400, "JSON object"),
        ("{not json", 400, "not valid JSON"),
    ],
)
async def test_bad_cancellations_are_refused_and_cancel_nothing(
    on_sqlite: Served, body: Any, status: int, fragment: str
) -> None:
    await on_sqlite.send({"name": "shop/wait", "data": {"id": 1}})
    await on_sqlite.t.run_until_idle()
    if isinstance(body, str):
        reply = await on_sqlite.http.post("/v1/cancellations", content=body)
    else:
        reply = await on_sqlite.http.post("/v1/cancellations", json=body)
    assert reply.status_code == status
    assert fragment in reply.json()["error"] and reply.json()["status"] == status
    assert [r.status for r in on_sqlite.t.runs(function_id="waiter")] == ["running"]


@pytest.mark.parametrize(
    ("path", "status", "fragment"),
    [
        ("/v1/events?limit=ten", 400, "Invalid limit query parameter"),
        ("/v1/events?cursor=not-a-ulid", 400, "Invalid cursor query parameter"),
        ("/v1/events?received_after=last-tuesday", 400, "Invalid received_after query parameter"),
        ("/v1/events?received_before=2024-13-45", 400, "Invalid received_before query parameter"),
        ("/v1/events/xyz", 400, "Invalid event ID"),
        ("/v1/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404, "Event not found"),
        ("/v1/events/xyz/runs", 400, "Invalid event ID"),
        ("/v1/runs/xyz", 400, "Invalid run ID"),
        ("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV", 404, "not found"),
        ("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV/jobs", 404, "not found"),
    ],
)
async def test_bad_requests_get_a_status_naming_what_is_wrong(
    on_sqlite: Served, path: str, status: int, fragment: str
) -> None:
    reply = await on_sqlite.http.get(path)
    assert reply.status_code == status and fragment in reply.json()["error"], reply.text


async def test_delete_of_an_unknown_run_is_404_and_a_bad_id_400(on_sqlite: Served) -> None:
    assert (await on_sqlite.http.delete("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")).status_code == 404
    assert (await on_sqlite.http.delete("/v1/runs/bad")).status_code == 400


async def test_limit_is_bounded_as_on_inngest(on_sqlite: Served) -> None:
    await on_sqlite.send(*[{"name": "shop/noop", "data": {"n": n}} for n in range(60)])
    assert len(await on_sqlite.get("/v1/events", limit=500)) == 51
    assert len(await on_sqlite.get("/v1/events", limit=-3)) == 1
    assert len(await on_sqlite.get("/v1/events")) == 20


async def test_failures_inside_are_answered_without_a_traceback(
    on_sqlite: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any) -> Any:
        raise RuntimeError("secret internals at /srv/app.py line 3")

    async def unavailable(*_args: Any) -> Any:
        raise StoreError("database is down")

    monkeypatch.setattr(on_sqlite.t.store, "get_run", broken)
    reply = await on_sqlite.http.get("/v1/runs/01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert reply.status_code == 500 and reply.json() == {"error": "internal error", "data": None, "status": 500}
    monkeypatch.setattr(on_sqlite.t.store, "list_events", unavailable)
    reply = await on_sqlite.http.get("/v1/events")
    assert reply.status_code == 503 and "store unavailable" in reply.json()["error"]


async def test_runs_listing_helper_agrees_with_the_api(served: Served) -> None:
    """The event's runs endpoint and the store's own listing agree (batched read vs. filter)."""
    ids = await served.send(*[{"name": "shop/checkout", "data": {"sku": str(n)}} for n in range(3)])
    await settle(served.t)
    for eid in ids:
        api = [r["run_id"] for r in await served.get(f"/v1/events/{eid}/runs")]
        store = [r.id for r in await served.t.store.list_runs(RunFilter(event_id=eid))]
        assert api == store[::-1] and len(api) == 1


async def test_every_event_of_a_batch_lists_the_batched_run(make_store: Callable[[], Store]) -> None:
    import outlast

    app = outlast.Outlast("batcher")

    @app.function(id="sum", trigger="b/n", batch=outlast.Batch(max_size=3, timeout="1m"))
    async def total(ctx: outlast.Context) -> int:
        return sum(e.data["n"] for e in ctx.events)

    async with (
        TestEngine(app, store=make_store()) as t,
        serving(t.engine) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        ids = (await http.post("/e/k", json=[{"name": "b/n", "data": {"n": n}} for n in (1, 2, 3)])).json()["ids"]
        await settle(t)
        runs = [(await http.get(f"/v1/events/{eid}/runs")).json()["data"] for eid in ids]
        assert [[r["output"] for r in listed] for listed in runs] == [[6], [6], [6]]
        assert {listed[0]["run_id"] for listed in runs} == {t.runs()[0].id}
        assert all(listed[0]["event_id"] == ids[0] for listed in runs)  # Inngest's event_id: the first event
