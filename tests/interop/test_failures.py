"""What the HTTP driver does when a served app misbehaves, and when the server itself dies:
each run is retried by its policy or fails with a clear error; no event, run or committed step
is lost, and no committed step's body is called again."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.interop.fake_app import FakeApp
from tests.interop.harness import Outlast, SdkApp, effects, python_app


@pytest.mark.parametrize(
    ("behaviour", "name", "fragment"),
    [
        ("garbage", "InvalidSDKResponseError", "not JSON"),
        ("no-sdk-header", "NotAnSDKResponseError", "without an X-Inngest-SDK header"),
        ("closed", "SDKConnectionError", "closed the connection"),
        ("500", "Error", "boom"),
    ],
)
async def test_a_broken_answer_is_retried_then_fails_clearly(
    outlast: Outlast, behaviour: str, name: str, fragment: str
) -> None:
    async with FakeApp([behaviour]) as app:
        await app.register(outlast.url, retries=1)
        [event] = await outlast.send({"name": "fake/go"})
        run = await outlast.finished_run(event)
    assert run.status == "failed" and run.error is not None
    assert run.error["name"] == name and fragment in run.error["message"], run.error
    assert app.calls == 2 and len(run.failures) == 1  # retries=1: two attempts


async def test_a_failure_then_an_answer_completes(outlast: Outlast) -> None:
    async with FakeApp(["closed", "500", "ok"]) as app:
        await app.register(outlast.url, retries=2)
        [event] = await outlast.send({"name": "fake/go"})
        run = await outlast.finished_run(event)
    assert (run.status, run.output, app.calls) == ("completed", "done", 3)


async def test_the_app_down_fails_the_run_clearly(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    py_app.proc.stop()
    [event] = await outlast.send({"name": "py/three"})
    run = await outlast.finished_run(event, timeout=30)
    assert run.status == "failed" and run.error is not None and run.error["name"] == "SDKUnreachableError"
    assert "connection refused" in run.error["message"] and py_app.url in run.error["message"]
    assert len(run.failures) == 4  # the default policy: 4 retries


async def test_an_app_hanging_past_the_request_timeout(tmp_path: Path) -> None:
    server = Outlast(tmp_path, env={"OUTLAST_HTTP_REQUEST_TIMEOUT_MS": "1000"})
    app = python_app(tmp_path, server)
    try:
        await app.sync()
        [event] = await server.send({"name": "py/hang", "data": {"seconds": 4}})
        run = await server.finished_run(event)
        assert run.status == "failed" and run.error is not None and run.error["name"] == "SDKTimeoutError"
        assert "request timeout (1s)" in run.error["message"]
    finally:
        app.proc.stop()
        await server.close()


async def test_resync_with_a_step_and_a_function_removed(outlast: Outlast, py_app: SdkApp, tmp_path: Path) -> None:
    await py_app.sync()
    evolving, sleeper = await outlast.send(
        {"name": "py/evolving", "data": {"n": 7, "pause": 3}}, {"name": "py/sleeper"}
    )
    for event in (evolving, sleeper):
        await outlast.wait(lambda e=event: _sleeping(outlast, e), 15, "the run to sleep")
    py_app.proc.stop()
    py_app.restart({**py_app.proc.env, "PY_APP_VARIANT": "v2"})
    assert (await py_app.sync()).json()["modified"] is True

    run = await outlast.finished_run(evolving)
    assert (run.status, run.output) == ("completed", ["first", "second-v2"])
    assert effects(tmp_path)["evolving-first:7"] == 1  # the committed step was not called again
    run = await outlast.finished_run(sleeper)
    assert run.status == "failed" and run.error is not None and run.error["name"] == "FunctionNotFoundError"
    assert "sleeper" in run.error["message"] and "not served" in run.error["message"]

    # `receiver` is gone: its event starts nothing. Runs start in the transaction that stores their
    # event, so `three`, sent with it, shows the send was planned against the synced functions.
    sent, three = await outlast.send({"name": "py/sent", "data": {"i": 1}}, {"name": "py/three"})
    assert [r.function_id for r in await outlast.runs_of(three)] == ["three-steps"]
    assert await outlast.runs_of(sent) == []
    assert (await outlast.finished_run(three)).status == "completed"
    assert await outlast.runs_of(sent) == []


async def _sleeping(outlast: Outlast, event_id: str) -> bool:
    runs = await outlast.runs_of(event_id)
    return bool(runs) and any(s.status == "sleeping" for s in (await outlast.run(runs[0].id)).steps)


async def test_sigkill_under_load_loses_nothing(outlast: Outlast, py_app: SdkApp, tmp_path: Path) -> None:
    await py_app.sync()
    count = 40
    ids = await outlast.send(*({"name": "py/slow", "data": {"n": i}} for i in range(count)))

    async def some_done() -> bool:
        return len(await outlast.runs(function_id="slow-steps", status="completed")) >= 3

    await outlast.wait(some_done, 30, "some runs to complete")
    outlast.proc.kill(signal.SIGKILL)

    store = await outlast.store()
    committed: dict[str, int] = {}
    for run in await outlast.runs(function_id="slow-steps"):
        full = await outlast.run(run.id)
        n = (await store.get_events(full.event_ids))[0].data["n"]
        for step in full.steps:
            if step.kind == "run" and step.status == "completed":
                committed[f"{step.id}:{n}"] = 0
    ran = effects(tmp_path)
    committed = {name: ran[name] for name in committed}
    assert 0 < len(committed) < 3 * count, "the kill should land in the middle of the load"

    outlast.restart()
    runs = [await outlast.finished_run(event, timeout=60) for event in ids]
    assert [r.status for r in runs] == ["completed"] * count
    assert sorted(r.output["n"] for r in runs) == list(range(count))
    assert len(await outlast.runs(function_id="slow-steps")) == count  # no run lost, none doubled
    ran = effects(tmp_path)
    assert {name: ran[name] for name in committed} == committed  # committed bodies never ran again
    assert all(ran[f"{s}:{i}"] >= 1 for i in range(count) for s in ("s1", "s2", "s3"))
    assert all(r.output["done"] == ["s1", "s2", "s3"] for r in runs)
