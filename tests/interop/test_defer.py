"""inngest@4's `defer()` (`DeferAdd`, `DeferAbort`) on a real `outlast dev`: the deferred function
runs once its parent has ended (completed or failed), with the data the parent gave it, and
never when the parent aborted it; an opcode Outlast does not know fails the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from outlast.core.models import EventRecord, Run
from tests.interop.fake_app import FakeApp
from tests.interop.harness import Outlast, SdkApp, effects, js4_app

DEFERRED = "inngest/deferred.schedule"


@pytest.fixture
def app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    served = js4_app(tmp_path, outlast)
    yield served
    served.proc.stop()


async def deferred_runs(outlast: Outlast, count: int) -> list[Run]:
    """The deferred function's runs once `count` of them have ended (all a parent's defers are
    scheduled in the transaction that ends it, so none can come later)."""

    async def ended() -> list[Run] | None:
        runs = await outlast.runs(function_id="later")
        done = [await outlast.run(r.id) for r in runs if r.status in ("completed", "failed")]
        return done if len(done) >= count else None

    return await outlast.wait(ended, 60.0, f"{count} deferred run(s)")


async def trigger_of(outlast: Outlast, run: Run) -> EventRecord:
    [event] = await (await outlast.store()).get_events(run.event_ids)
    return event


#: with v4's default async checkpointing, and without (`checkpointing: false`)
MODES = pytest.mark.parametrize("suffix", ["", "-plain"], ids=["checkpointing", "no-checkpointing"])


@MODES
async def test_the_deferred_function_runs_after_its_parent(
    outlast: Outlast, app: SdkApp, tmp_path: Path, suffix: str
) -> None:
    await app.sync()
    (event_id,) = await outlast.send({"name": f"js4/defer{suffix}", "data": {"n": 3}})
    parent = await outlast.finished_run(event_id)
    assert (parent.status, parent.output) == ("completed", "parent done")
    [child] = await deferred_runs(outlast, 1)
    assert (child.status, child.output) == ("completed", {"n": 3, "keys": ["n"]})  # the SDK strips `_inngest`
    assert parent.ended_at is not None and child.created_at >= parent.ended_at
    trigger = await trigger_of(outlast, child)
    assert trigger.name == DEFERRED
    assert trigger.data["n"] == 3
    assert trigger.data["_inngest"] == {
        "fn_slug": "js4-app-later",
        "parent_app_id": parent.app_id,
        "parent_fn_id": parent.function_id,
        "parent_fn_slug": f"js4-app-deferring{suffix}",
        "parent_run_id": parent.id,
    }
    kinds = {s.id: s.kind for s in parent.steps}
    assert kinds == {"before": "run", "later-1": "defer", "after": "run", "last": "run"}
    assert {k: v for k, v in effects(tmp_path).items() if not k.startswith("request:")} == {
        "parent-after:3": 1,
        "deferred:3": 1,
    }
    # the defer rides along and costs nothing: one request with checkpointing; without, one per
    # step (each run inline: a lazy op opens no parallel group) and one for the result
    assert effects(tmp_path)[f"request:js4-app-deferring{suffix}"] == (4 if suffix else 1)


@MODES
async def test_an_aborted_defer_never_runs(outlast: Outlast, app: SdkApp, tmp_path: Path, suffix: str) -> None:
    await app.sync()
    (event_id,) = await outlast.send({"name": f"js4/defer-abort{suffix}", "data": {"n": 5}})
    parent = await outlast.finished_run(event_id)
    assert (parent.status, parent.output) == ("completed", "aborted two")
    runs = await deferred_runs(outlast, 1)
    assert [(r.status, r.output) for r in runs] == [("completed", {"n": 5, "keys": ["n"]})]
    assert {k: v for k, v in effects(tmp_path).items() if k.startswith("deferred:")} == {"deferred:5": 1}


async def test_a_failed_parent_still_starts_its_deferred_function(
    outlast: Outlast, app: SdkApp, tmp_path: Path
) -> None:
    """As Inngest's finalizer: a run's defers are scheduled however the run ends."""
    await app.sync()
    (event_id,) = await outlast.send({"name": "js4/defer-fail", "data": {"n": 9}})
    parent = await outlast.finished_run(event_id)
    assert parent.status == "failed" and parent.error is not None
    assert "the parent failed" in parent.error["message"]
    [child] = await deferred_runs(outlast, 1)
    assert (child.status, child.output) == ("completed", {"n": 9, "keys": ["n"]})
    assert (await trigger_of(outlast, child)).data["_inngest"]["parent_run_id"] == parent.id


async def test_an_opcode_outlast_does_not_support_fails_the_run(outlast: Outlast) -> None:
    """An SDK newer than the server may send an opcode it does not know: the run fails saying so,
    at once (a retry would fail the same way), rather than completing without it."""
    async with FakeApp(["unknown-opcode"]) as fake:
        await fake.register(outlast.url, retries=2)
        [event] = await outlast.send({"name": "fake/go"})
        run = await outlast.finished_run(event)
    assert run.status == "failed" and run.error is not None
    assert run.error["name"] == "UnsupportedOpcodeError"
    assert "'Teleport'" in run.error["message"] and "'jump'" in run.error["message"]
    assert len(run.failures) == 0 and fake.calls == 1


async def test_an_unknown_opcode_answering_a_planned_step_fails_the_run(outlast: Outlast) -> None:
    """Not a step error the function could catch and go on from: the run fails at once."""
    async with FakeApp(["plan-two", "unknown-opcode", "unknown-opcode", "ok"]) as fake:
        await fake.register(outlast.url, retries=2)
        [event] = await outlast.send({"name": "fake/go"})
        run = await outlast.finished_run(event)
    assert run.status == "failed" and run.error is not None
    assert run.error["name"] == "UnsupportedOpcodeError" and "'Teleport'" in run.error["message"]
    assert len(run.failures) == 0 and fake.calls == 3
