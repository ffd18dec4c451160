"""A FastAPI app on the official Inngest Python SDK (`inngest` from PyPI), synced to a real
`outlast dev` on loopback: every step kind, flow control from the sync payload, sync itself."""

from __future__ import annotations

from pathlib import Path

import httpx

from outlast.core.config import FunctionConfig
from tests.interop.harness import Outlast, SdkApp, effects


async def test_sync_stores_the_app_and_its_functions(outlast: Outlast, py_app: SdkApp) -> None:
    reply = await py_app.sync()
    assert reply.json()["modified"] is True
    store = await outlast.store()
    app = await store.get_app("py-app")
    assert app is not None and app.url == py_app.url and app.sdk.startswith("py:v") and app.framework == "fast_api"
    assert "steps" in app.functions and "doomed-failure" in app.functions
    again = await py_app.sync()
    assert again.json()["modified"] is False  # identical re-sync recognised by checksum


async def test_every_step_kind(outlast: Outlast, py_app: SdkApp, tmp_path: Path) -> None:
    await py_app.sync()
    ids = await outlast.send(
        {"name": "py/steps", "data": {"n": 1}},
        {"name": "py/parallel"},
        {"name": "py/parent", "data": {"x": 21}},
        {"name": "py/parent", "data": {"x": 1, "fail": True}},
        {"name": "py/send"},
        {"name": "py/wait", "data": {"id": "late", "timeout": 1}},
        {"name": "py/wait", "data": {"id": "w1"}},
    )
    steps, parallel, parent_ok, parent_fail, sender, timed_out, matched = ids
    run = await outlast.finished_run(steps)
    assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 1})
    assert [(s.id, s.kind, s.status) for s in run.steps] == [
        ("one", "run", "completed"),
        ("two", "run", "completed"),
        ("nap", "sleep", "completed"),
        ("until", "sleep", "completed"),
    ]
    assert run.steps[2].ended_at - run.steps[2].started_at >= 900  # the sleep slept

    run = await outlast.finished_run(parallel)
    assert run.output == ["left", "right", "middle", "after"]

    assert (await outlast.finished_run(parent_ok)).output == {"doubled": 42}
    failed_child = await outlast.finished_run(parent_fail)
    assert failed_child.output == {"child_failed": "child refused"}
    assert failed_child.steps[0].kind == "invoke" and failed_child.steps[0].status == "failed"

    run = await outlast.finished_run(sender)
    assert run.steps[0].id == "fan-out" and len(run.output) == 2  # Python sends events from a step.run
    received = [await outlast.finished_run(i) for i in run.output]
    assert sorted(r.output["i"] for r in received) == [0, 1]

    assert (await outlast.finished_run(timed_out, timeout=15)).output == {"approved": None}
    await outlast.wait(lambda: _waiting(outlast, matched), 15, "the wait to be stored")
    await outlast.send({"name": "py/approved", "data": {"id": "other"}}, {"name": "py/approved", "data": {"id": "w1"}})
    assert (await outlast.finished_run(matched)).output == {"approved": {"id": "w1"}}

    ran = effects(tmp_path)
    assert ran["one:1"] == ran["two:1"] == 1  # memoized steps are never called again
    assert ran["branch:left"] == ran["branch:right"] == ran["branch:middle"] == 1


async def _waiting(outlast: Outlast, event_id: str) -> bool:
    runs = await outlast.runs_of(event_id)
    return bool(runs) and any(s.status == "waiting" for s in (await outlast.run(runs[0].id)).steps)


async def test_step_retries_function_errors_and_on_failure(outlast: Outlast, py_app: SdkApp, tmp_path: Path) -> None:
    await py_app.sync()
    flaky, fn_error, doomed = await outlast.send({"name": "py/flaky"}, {"name": "py/fn-error"}, {"name": "py/doomed"})
    run = await outlast.finished_run(flaky)
    assert (run.status, run.output) == ("completed", "ok at 2")
    step = run.steps[0]
    assert step.attempts == 3 and [f.error["message"] for f in step.failures] == ["attempt 0 fails", "attempt 1 fails"]

    run = await outlast.finished_run(fn_error)
    assert run.status == "failed" and run.error["name"] == "ValueError"
    assert run.error["message"] == "broken outside any step (attempt 1)"  # retries=1: two attempts

    run = await outlast.finished_run(doomed)
    assert run.status == "failed" and run.error == {
        **run.error,
        "name": "NonRetriableError",
        "message": "doomed from the start",
    }
    await outlast.wait(lambda: _ran(tmp_path, "on-failure:doomed from the start"), 15, "the onFailure handler")
    ran = effects(tmp_path)
    assert [ran[f"flaky:{i}"] for i in range(3)] == [1, 1, 1] and ran["fn-error:0"] == ran["fn-error:1"] == 1


async def _ran(tmp_path: Path, name: str) -> bool:
    return effects(tmp_path)[name] > 0


async def test_flow_control_comes_from_the_sync_payload(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    _version, configs = await (await outlast.store()).load_functions()
    by_id: dict[str, FunctionConfig] = {c.id: c for c in configs}
    limited = by_id["limited"]
    assert limited.runtime.kind == "http" and limited.runtime.url.startswith(py_app.url)
    assert limited.rate_limit is not None and (limited.rate_limit.limit, limited.rate_limit.period_ms) == (1, 60_000)
    assert limited.concurrency[0].limit == 1 and limited.concurrency[0].key == "event.data.user"
    assert by_id["flaky"].retries == 2 and by_id["doomed-failure"].retries == 0
    assert by_id["doomed-failure"].failure_of == "doomed"

    first, second, other = await outlast.send(
        {"name": "py/limited", "data": {"user": "u1"}},
        {"name": "py/limited", "data": {"user": "u1"}},
        {"name": "py/limited", "data": {"user": "u2"}},
    )
    assert (await outlast.finished_run(first)).status == "completed"
    assert (await outlast.finished_run(second)).status == "skipped"  # rate limited
    assert (await outlast.finished_run(other)).output == "u2"

    batch = await outlast.send(*({"name": "py/batch", "data": {"i": i}} for i in range(3)))
    run = await outlast.finished_run(batch[0])
    assert run.output == [0, 1, 2] and len(run.event_ids) == 3


async def test_large_state_is_fetched_through_the_api(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    [big] = await outlast.send({"name": "py/big"})
    run = await outlast.finished_run(big, timeout=60)
    assert (run.status, run.output) == ("completed", 5_000_000)


async def test_bad_config_is_refused_naming_function_and_field(outlast: Outlast) -> None:
    payload = {
        "url": "http://127.0.0.1:1/api/inngest",
        "v": "0.1",
        "sdk": "py:v0.5.0",
        "framework": "fast_api",
        "appname": "bad-app",
        "deploy_type": "ping",
        "functions": [
            {
                "id": "bad-app-fine",
                "name": "fine",
                "triggers": [{"event": "x/y"}],
                "steps": {
                    "step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://127.0.0.1:1/x"}}
                },
            },
            {
                "id": "bad-app-broken",
                "name": "broken",
                "triggers": [{"event": "x/y"}],
                "rateLimit": {"limit": 1, "period": "48h"},
                "steps": {
                    "step": {"id": "step", "name": "step", "runtime": {"type": "http", "url": "http://127.0.0.1:1/x"}}
                },
            },
        ],
    }
    async with httpx.AsyncClient() as client:
        reply = await client.post(f"{outlast.url}/fn/register", json=payload)
    assert reply.status_code == 400
    assert "'bad-app-broken'" in reply.json()["error"] and "rateLimit.period" in reply.json()["error"]
    store = await outlast.store()
    assert await store.get_app("bad-app") is None and await store.list_apps() == []
