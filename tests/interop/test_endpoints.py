"""Durable Endpoints: `inngest.endpoint(handler)` on the official `inngest@4` (served by
`inngest/node`, tests/interop/js4/endpoints.js) against a real `outlast dev` and a signed
`outlast start`. The endpoint's runs are Outlast runs with their steps; a slow one redirects its
caller to the output URL, which answers with the endpoint's response once the run ends; a step
that throws is retried in the background; bad checkpoints are refused and store nothing."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from outlast.core.models import Run
from outlast.protocol.signing import bearer_token
from tests.interop.harness import JS4_APP_DIR, SIGNING_KEY, Outlast, SdkApp, effects, free_port, node_ready, sdk_env

TIMEOUT = 60.0


def endpoints_app(tmp: Path, outlast: Outlast, *, production: bool = False) -> SdkApp:
    node_ready(JS4_APP_DIR)
    port = free_port()
    env = {**sdk_env(tmp, outlast, production=production), "PORT": str(port)}
    return SdkApp("js4-endpoints", ["node", "endpoints.js"], cwd=JS4_APP_DIR, env=env, tmp=tmp, port=port, path="")


@pytest.fixture
def app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    served = endpoints_app(tmp_path, outlast)
    yield served
    served.proc.stop()


async def _ended(outlast: Outlast, function_id: str, count: int = 1) -> list[Run]:
    async def ended() -> list[Run] | None:
        runs = [r for r in await outlast.runs(function_id) if r.status in ("completed", "failed", "cancelled")]
        return runs if len(runs) >= count else None

    runs = await outlast.wait(ended, TIMEOUT, f"{count} run(s) of {function_id} to end")
    return [await outlast.run(r.id) for r in runs]  # with their steps


async def test_an_endpoint_runs_its_steps_durably(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        reply = await client.get(f"{app.url}/quick?n=4")
    assert (reply.status_code, reply.json(), reply.headers["x-endpoint"]) == (201, {"a": 5, "b": 10}, "quick")
    (run,) = await _ended(outlast, "get-quick")
    assert run.status == "completed" and run.app_id == f"127-0-0-1-{app.port}", run.output
    assert [s.id for s in run.steps] == ["a", "b"] and [s.output for s in run.steps] == [5, 10]
    assert run.output is not None, run
    assert effects(tmp_path) == {"a:4": 1, "b:4": 1}
    cli = await outlast_cli(outlast, "runs", "--function", "get-quick")
    assert run.id in cli
    async with httpx.AsyncClient(base_url=outlast.url) as client:
        page = await client.get(f"/runs/{run.id}")
    assert page.status_code == 200 and "get-quick" in page.text and "inngest/http.request" in page.text


async def outlast_cli(outlast: Outlast, *args: str) -> str:
    """The CLI's output, run against `outlast`'s database."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "outlast.cli",
        *args,
        env={**outlast.env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return out.decode()


async def test_a_slow_endpoint_redirects_to_its_output(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        first = await client.get(f"{app.url}/slow?n=7")
        assert first.status_code == 302, first.text
        location = first.headers["location"]
        assert location.startswith(f"{outlast.url}/v1/http/runs/") and "token=" in location
        done = await client.get(location)
        assert (done.status_code, done.json()) == (200, {"before": 7, "after": 107})
        forged = await client.get(location.split("token=")[0] + "token=forged")
        assert forged.status_code == 401
    (run,) = await _ended(outlast, "get-slow")
    assert run.status == "completed" and [s.id for s in run.steps] == ["before", "nap", "after"]
    assert effects(tmp_path) == {"before:7": 1, "after:7": 1}


async def test_a_step_that_throws_is_retried(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True) as client:
        reply = await client.get(f"{app.url}/flaky")
    assert (reply.status_code, reply.json()) == (200, {"value": "second time lucky"})
    (run,) = await _ended(outlast, "get-flaky")
    assert run.status == "completed" and effects(tmp_path)["flaky"] == 2
    (step,) = run.steps
    assert (step.id, step.attempts, step.output) == ("flaky", 2, "second time lucky")


async def _checkpoint(outlast: Outlast, path: str, body: Any, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=outlast.url) as client:
        if isinstance(body, bytes):
            return await client.post(path, content=body, **kw)
        return await client.post(path, json=body, **kw)


EVENT = {"name": "inngest/http.request", "data": {"domain": "http://127.0.0.1:9", "method": "GET", "path": "/x"}}
RUN_ID = "01JZZZZZZZZZZZZZZZZZZZZZZZ"


async def test_bad_checkpoints_are_refused_and_store_nothing(outlast: Outlast) -> None:
    for body, field in (
        ([], "expected a JSON object"),
        ({"event": EVENT}, "run_id"),
        ({"run_id": "nope", "event": EVENT}, "run_id"),
        ({"run_id": RUN_ID, "event": {"name": "x"}}, "event"),
        ({"run_id": RUN_ID, "event": {**EVENT, "data": {"domain": "nowhere"}}}, "event.data.domain"),
        ({"run_id": RUN_ID, "event": EVENT, "retries": -1}, "retries"),
        ({"run_id": RUN_ID, "event": EVENT, "steps": "nope"}, "steps"),
    ):
        reply = await _checkpoint(outlast, "/v1/checkpoint", body)
        assert reply.status_code == 400 and field in reply.json()["error"], (body, reply.text)
    bad_json = await _checkpoint(outlast, "/v1/checkpoint", b"{not json")
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    huge = await _checkpoint(outlast, "/v1/checkpoint", b"x" * (17 * 1024 * 1024))
    assert huge.status_code == 413 and "over the limit" in huge.json()["error"]
    big = {**EVENT, "data": {**EVENT["data"], "body": "x" * 8_000_000}}  # over the event limit
    too_big = await _checkpoint(outlast, "/v1/checkpoint", {"run_id": RUN_ID, "event": big})
    assert too_big.status_code == 413 and "event is too large" in too_big.json()["error"]
    unknown = await _checkpoint(outlast, f"/v1/checkpoint/{RUN_ID}/steps", {"steps": []})
    assert unknown.status_code == 404 and RUN_ID in unknown.json()["error"]
    assert (await _checkpoint(outlast, "/v1/checkpoint/nope/steps", {"steps": []})).status_code == 400
    assert await outlast.runs() == []

    made = await _checkpoint(outlast, "/v1/checkpoint", {"run_id": RUN_ID, "event": EVENT})
    assert made.status_code == 200 and made.json()["data"]["run_id"] == RUN_ID
    again = await _checkpoint(outlast, "/v1/checkpoint", {"run_id": RUN_ID, "event": EVENT})
    assert again.status_code == 409 and "already exists" in again.json()["error"]
    wrong = await _checkpoint(outlast, f"/v1/checkpoint/{RUN_ID}/steps", {"run_id": "01OTHER", "steps": []})
    assert wrong.status_code == 400 and "run_id" in wrong.json()["error"]
    (run,) = await outlast.runs()
    assert (run.id, run.status, run.steps) == (RUN_ID, "running", [])


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[Outlast]:
    server = Outlast(
        tmp_path,
        mode="start",
        env={
            "INNGEST_SIGNING_KEY": SIGNING_KEY,
            "OUTLAST_EVENT_KEY": "endpoint-event-key",
            "OUTLAST_DASHBOARD_PASSWORD": "dashboard-secret",
            "OUTLAST_LEASE_MS": "5000",
        },
    )
    yield server
    await server.close()


async def test_production_needs_the_signing_key(production: Outlast, tmp_path: Path) -> None:
    refused = await _checkpoint(production, "/v1/checkpoint", {"run_id": RUN_ID, "event": EVENT})
    assert refused.status_code == 401 and "signing key" in refused.json()["error"]
    steps = await _checkpoint(production, f"/v1/checkpoint/{RUN_ID}/steps", {"steps": []})
    assert steps.status_code == 401
    assert await production.runs() == []

    app = endpoints_app(tmp_path, production, production=True)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True) as client:
            quick = await client.get(f"{app.url}/quick?n=1")
            slow = await client.get(f"{app.url}/slow?n=2")
        assert (quick.status_code, quick.json()) == (201, {"a": 2, "b": 4})
        assert (slow.status_code, slow.json()) == (200, {"before": 2, "after": 102})  # resumed with a signed call
        headers = {"Authorization": f"Bearer {bearer_token(SIGNING_KEY)}"}
        signed = await _checkpoint(production, "/v1/checkpoint", {"run_id": RUN_ID, "event": EVENT}, headers=headers)
        assert signed.status_code == 200
    finally:
        app.proc.stop()


async def test_parallel_steps_and_a_handler_error_go_on_in_the_background(
    outlast: Outlast, app: SdkApp, tmp_path: Path
) -> None:
    """Parallel steps: the caller is redirected and each step is called on its own. The handler's
    own error (outside any step) is a function-level error: retried through the endpoint."""
    async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True) as client:
        both = await client.get(f"{app.url}/parallel")
        again = await client.get(f"{app.url}/throws")
    assert (both.status_code, both.json(), again.status_code, again.json()) == (200, {"both": "xy"}, 200, {"ok": True})
    (parallel,) = await _ended(outlast, "get-parallel")
    assert parallel.status == "completed" and sorted(s.id for s in parallel.steps) == ["x", "y"]
    (thrown,) = await _ended(outlast, "get-throws")
    assert (thrown.status, thrown.steps, len(thrown.failures)) == ("completed", [], 1)
    assert "handler threw an error" in thrown.failures[0].error["message"], thrown.failures
    assert effects(tmp_path) == {"x": 1, "y": 1, "throws": 2}


async def test_an_endpoint_waits_for_an_event(outlast: Outlast, app: SdkApp) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        first = await client.get(f"{app.url}/wait?id=w1")
        assert first.status_code == 302, first.text  # the wait is stored before the caller is told
        await outlast.send({"name": "js4/approve", "data": {"id": "w1", "by": "ada"}})
        done = await client.get(first.headers["location"])
    assert (done.status_code, done.json()) == (200, {"approved": "ada"})
    (run,) = await _ended(outlast, "get-wait")
    assert run.status == "completed" and [s.id for s in run.steps] == ["approval"]


async def test_a_request_that_dies_mid_run_is_resumed_through_the_endpoint(tmp_path: Path) -> None:
    """The endpoint's app dies while a step runs: once the request's hold on the run lapses
    (`http_request_timeout_ms` after its last checkpoint), the run is resumed by calling the
    endpoint again; the step that had finished is not run again."""
    server = Outlast(tmp_path, env={"OUTLAST_LEASE_MS": "5000", "OUTLAST_HTTP_REQUEST_TIMEOUT_MS": "2000"})
    app = endpoints_app(tmp_path, server)
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            request = asyncio.ensure_future(client.get(f"{app.url}/hang"))

            async def hanging() -> bool | None:
                return effects(tmp_path)["hang"] == 1 or None

            await server.wait(hanging, TIMEOUT, "the step to hang")
            app.proc.kill()
            with pytest.raises(httpx.HTTPError):
                await request
        app.restart()
        (run,) = await _ended(server, "get-hang")
        assert run.status == "completed" and [s.id for s in run.steps] == ["first", "hang"]
        assert effects(tmp_path) == {"first": 1, "hang": 2}
    finally:
        app.proc.stop()
        await server.close()
