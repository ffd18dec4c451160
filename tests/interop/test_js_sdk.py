"""An Express app on the official Inngest TypeScript SDK (`inngest@3` from npm, Node from the
machine), synced to a real `outlast dev` on loopback: every step kind, retries, onFailure, flow
control from the sync payload, and signed production mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.harness import EVENT_KEY, SIGNING_KEY, Outlast, SdkApp, effects, js_app

#: the first test of a fresh checkout runs `npm ci` (up to 600 s, harness.node_ready) before its app starts
pytestmark = pytest.mark.timeout(720)


@pytest.fixture
def app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    served = js_app(tmp_path, outlast)
    yield served
    served.proc.stop()


async def test_sync_from_the_js_sdk(outlast: Outlast, app: SdkApp) -> None:
    assert (await app.sync()).json()["modified"] is True
    stored = await (await outlast.store()).get_app("js-app")
    assert stored is not None and stored.sdk.startswith("js:v3") and stored.framework == "express"
    assert "doomed-failure" in stored.functions
    _version, configs = await (await outlast.store()).load_functions()
    by_id = {c.id: c for c in configs if c.app_id == "js-app"}
    limited = by_id["limited"]
    assert limited.rate_limit is not None and limited.rate_limit.period_ms == 60_000
    assert limited.concurrency[0].key == "event.data.user" and limited.throttle is not None
    assert by_id["batched"].batch is not None and by_id["batched"].batch.max_size == 3
    assert by_id["debounced"].debounce is not None and by_id["debounced"].debounce.period_ms == 1000
    assert by_id["flaky"].retries == 2 and by_id["doomed-failure"].failure_of == "doomed"


async def test_run_steps_and_sleeps_are_memoized(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    await app.sync()
    [steps] = await outlast.send({"name": "js/steps", "data": {"n": 1}})
    run = await outlast.finished_run(steps)
    assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 1})
    assert [(s.id, s.kind) for s in run.steps] == [("one", "run"), ("two", "run"), ("nap", "sleep"), ("until", "sleep")]
    ran = effects(tmp_path)
    assert ran["one:1"] == ran["two:1"] == 1


async def test_parallel_steps_each_run_once(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    await app.sync()
    [parallel] = await outlast.send({"name": "js/parallel"})
    run = await outlast.finished_run(parallel)
    assert (run.status, run.output) == ("completed", ["left", "right", "middle", "after"])
    ran = effects(tmp_path)
    assert ran["branch:left"] == ran["branch:right"] == ran["branch:middle"] == 1


async def test_invoke_returns_the_childs_output_or_raises_its_error(outlast: Outlast, app: SdkApp) -> None:
    await app.sync()
    parent_ok, parent_fail = await outlast.send(
        {"name": "js/parent", "data": {"x": 21}}, {"name": "js/parent", "data": {"x": 1, "fail": True}}
    )
    assert (await outlast.finished_run(parent_ok)).output == {"doubled": 42}
    assert (await outlast.finished_run(parent_fail)).output == {"child_failed": "child refused"}


async def test_send_event_starts_the_runs_of_the_sent_events(outlast: Outlast, app: SdkApp) -> None:
    await app.sync()
    [sender] = await outlast.send({"name": "js/send"})
    run = await outlast.finished_run(sender)
    assert run.steps[0].kind == "send_event" and len(run.output) == 2
    received = [await outlast.finished_run(i) for i in run.output]
    assert sorted(r.output["i"] for r in received) == [0, 1]


async def test_wait_for_event_times_out_or_gets_the_matching_event(outlast: Outlast, app: SdkApp) -> None:
    await app.sync()
    timed_out, matched = await outlast.send(
        {"name": "js/wait", "data": {"id": "late", "timeout": "1s"}}, {"name": "js/wait", "data": {"id": "w1"}}
    )
    assert (await outlast.finished_run(timed_out, timeout=15)).output == {"approved": None}
    await outlast.wait(lambda: _waiting(outlast, matched), 15, "the wait to be stored")
    await outlast.send({"name": "js/approved", "data": {"id": "w1"}})
    assert (await outlast.finished_run(matched)).output == {"approved": {"id": "w1"}}


async def _waiting(outlast: Outlast, event_id: str) -> bool:
    runs = await outlast.runs_of(event_id)
    return bool(runs) and any(s.status == "waiting" for s in (await outlast.run(runs[0].id)).steps)


async def test_retries_on_failure_and_flow_control(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    await app.sync()
    flaky, doomed = await outlast.send({"name": "js/flaky"}, {"name": "js/doomed"})
    run = await outlast.finished_run(flaky)
    assert (run.status, run.output, run.steps[0].attempts) == ("completed", "ok at 2", 3)
    run = await outlast.finished_run(doomed)
    assert run.status == "failed" and run.error is not None and run.error["message"] == "doomed from the start"
    await outlast.wait(lambda: _ran(tmp_path, "on-failure:doomed from the start"), 15, "the onFailure handler")

    first, second = await outlast.send(
        {"name": "js/limited", "data": {"user": "u1"}}, {"name": "js/limited", "data": {"user": "u1"}}
    )
    assert (await outlast.finished_run(first)).output == "u1"
    assert (await outlast.finished_run(second)).status == "skipped"
    batch = await outlast.send(*({"name": "js/batch", "data": {"i": i}} for i in range(3)))
    assert (await outlast.finished_run(batch[0])).output == [0, 1, 2]
    debounced = await outlast.send(*({"name": "js/debounce", "data": {"key": "k", "i": i}} for i in range(3)))
    assert (await outlast.finished_run(debounced[0], timeout=15)).output == 2  # the last event wins


async def test_wait_for_signal_and_send_signal(outlast: Outlast, app: SdkApp) -> None:
    """step.waitForSignal and step.sendSignal (which posts to /v1/signals) on the same machinery."""
    await app.sync()
    [waiting] = await outlast.send({"name": "js/signal-wait", "data": {"signal": "js-sig"}})
    await outlast.wait(lambda: _waiting(outlast, waiting), 15, "the signal wait to be stored")
    [sending] = await outlast.send({"name": "js/signal-send", "data": {"signal": "js-sig", "data": {"ok": True}}})
    run = await outlast.finished_run(waiting)
    assert run.output == {"got": {"signal": "js-sig", "data": {"ok": True}}}
    assert (await outlast.finished_run(sending)).output == {"run_id": run.id}
    [nobody] = await outlast.send({"name": "js/signal-send", "data": {"signal": "nobody"}})
    assert (await outlast.finished_run(nobody)).output == {"run_id": None}  # a 404 is "no run", not an error


async def _ran(tmp_path: Path, name: str) -> bool:
    return effects(tmp_path)[name] > 0


async def test_signed_production_mode(tmp_path: Path) -> None:
    server = Outlast(
        tmp_path,
        mode="start",
        env={
            "OUTLAST_SIGNING_KEY": SIGNING_KEY,
            "OUTLAST_EVENT_KEY": EVENT_KEY,
            "OUTLAST_DASHBOARD_PASSWORD": "dashboard-secret",
        },
    )
    served = js_app(tmp_path, server, production=True)
    try:
        await served.sync()
        [event] = await server.send({"name": "js/steps", "data": {"n": 5}}, key=EVENT_KEY)
        run = await server.finished_run(event)
        assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "n": 5})
    finally:
        served.proc.stop()
        await server.close()
