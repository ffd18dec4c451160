"""`POST /v1/checkpoint/{run}/async` refuses what it must: a dispatch whose lease is not the
run's current one, or a run that has ended, is stale (409, the SDK stops); a body it cannot
read is a 400 naming the field; nothing is written in either case."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from outlast.core.models import Run, RunFilter
from outlast.storage import open_store
from tests.conftest import PG_URL, pg_database
from tests.interop.harness import EVENT_KEY, SIGNING_KEY, Outlast, SdkApp, effects, free_port, js4_app

STEP = {"op": "StepRun", "id": "a" * 40, "displayName": "forged", "data": 1}


async def _post(outlast: Outlast, run_id: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=outlast.url) as client:
        return await client.post(f"/v1/checkpoint/{run_id}/async", json=body)


async def test_stale_and_bad_checkpoints_change_nothing(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    (sleeping,) = await outlast.send({"name": "py/sleeper"})

    async def asleep() -> Any:
        runs = await outlast.runs_of(sleeping)
        return runs and any(s.id == "pause" for s in (await outlast.run(runs[0].id)).steps) and runs[0]

    run = await outlast.wait(asleep, 30, "the sleeper to sleep")
    forged = await _post(outlast, run.id, {"run_id": run.id, "qi_id": "not-its.lease", "steps": [STEP]})
    assert forged.status_code == 409, forged.text
    assert "stale dispatch" in forged.json()["error"]
    for body, field in (
        ({"run_id": run.id, "steps": [STEP]}, "qi_id"),
        ({"run_id": run.id, "qi_id": "a.b", "steps": "nope"}, "steps"),
        ({"run_id": "01OTHER", "qi_id": "a.b", "steps": []}, "run_id"),
        ({"run_id": run.id, "qi_id": "a.b", "steps": [{"op": "Sleep", "id": "b" * 40}]}, "only step results"),
    ):
        reply = await _post(outlast, run.id, body)
        assert reply.status_code == 400 and field in reply.json()["error"], (body, reply.text)
    assert (await _post(outlast, "01JUNKJUNKJUNKJUNKJUNKJUNK", {"qi_id": "a.b", "steps": []})).status_code == 404
    assert "forged" not in [s.id for s in (await outlast.run(run.id)).steps]

    done = await outlast.finished_run(sleeping)
    ended = await _post(outlast, done.id, {"run_id": done.id, "qi_id": "any.lease", "steps": [STEP]})
    assert ended.status_code == 409 and "has ended" in ended.json()["error"]
    assert "forged" not in [s.id for s in (await outlast.run(done.id)).steps]


class ApiRouter:
    """The app's Inngest API base URL: checkpoints go to `checkpoints`, everything else (the
    sync) to `rest`. An ASGI app on its own port, forwarding with httpx."""

    def __init__(self, *, rest: str, checkpoints: str) -> None:
        self.rest, self.checkpoints = rest, checkpoints
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.routed: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"] + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        target = self.checkpoints if scope["path"].startswith("/v1/checkpoint/") else self.rest
        self.routed.append(f"{scope['method']} {scope['path']} -> {'B' if target == self.checkpoints else 'A'}")
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k.lower() not in (b"host", b"content-length")}
        async with httpx.AsyncClient(timeout=60) as client:
            reply = await client.request(scope["method"], target + path, content=body, headers=headers)
        drop = ("content-length", "content-encoding", "transfer-encoding", "connection")
        out = [(k.encode(), v.encode()) for k, v in reply.headers.items() if k.lower() not in drop]
        out.append((b"content-length", str(len(reply.content)).encode()))
        await send({"type": "http.response.start", "status": reply.status_code, "headers": out})
        await send({"type": "http.response.body", "body": reply.content})


@contextlib.asynccontextmanager
async def serving(router: ApiRouter) -> AsyncIterator[ApiRouter]:
    server = uvicorn.Server(uvicorn.Config(router, port=router.port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield router
    finally:
        server.should_exit = True
        await task


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_a_checkpoint_through_another_server_is_seen_before_a_parallel_group(tmp_path: Path) -> None:
    """Two `outlast start` processes on one PostgreSQL database: A drives the attempt, the app
    checkpoints its first steps to B. A must call the parallel group with those steps in the
    memo, so no step body runs twice and no step fails."""
    database = pg_database()
    keys = {
        "INNGEST_SIGNING_KEY": SIGNING_KEY,
        "OUTLAST_EVENT_KEY": EVENT_KEY,
        "OUTLAST_DASHBOARD_PASSWORD": "dashboard-secret",
        "OUTLAST_DATABASE_URL": database,
    }
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    # B starts before the app syncs (with A) and does not re-read the functions on its own: it
    # claims none of the app's runs, so A drives the attempt and every checkpoint reaches B
    b = Outlast(tmp_path / "b", mode="start", env={**keys, "OUTLAST_REFRESH_FUNCTIONS_MS": "3600000"})
    a = Outlast(tmp_path / "a", mode="start", env=keys)
    store = open_store(database)
    await store.open()
    async with serving(ApiRouter(rest=a.url, checkpoints=b.url)) as router:
        app = js4_app(tmp_path, a, production=True, env={"INNGEST_API_BASE_URL": router.url})
        try:
            await app.sync()
            [event_id] = await a.send({"name": "js4/fan-in", "data": {"n": 1}}, key=EVENT_KEY)

            async def ended() -> Run | None:
                runs = await store.list_runs(RunFilter(event_id=event_id))
                done = [r for r in runs if r.status in ("completed", "failed", "cancelled")]
                return await store.get_run(done[0].id) if done else None

            run = await a.wait(ended, 60, "the fan-in run to end")
            assert (run.status, run.output) == ("completed", 1 + 2 + 20 + 200), (run.error, app.proc.output())
            assert run.failures == [] and all(s.attempts == 1 for s in run.steps), run.steps
            ran = effects(tmp_path)
            assert [ran[f"{s}:1"] for s in ("first", "second", "left", "right", "total")] == [1] * 5, ran
            assert any(r.startswith("POST /v1/checkpoint/") for r in router.routed), router.routed
        finally:
            app.proc.stop()
            await store.close()
            await a.close()
            await b.close()
