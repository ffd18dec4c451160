"""An Express app on `inngest@4` (what `npm install inngest` gives), synced to a real
`outlast dev` on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.harness import Outlast, SdkApp, effects, js4_app


@pytest.fixture
def app(tmp_path: Path, outlast: Outlast) -> Iterator[SdkApp]:
    served = js4_app(tmp_path, outlast)
    yield served
    served.proc.stop()


async def test_steps_run_once_each(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    await app.sync()
    (event_id,) = await outlast.send({"name": "js4/steps", "data": {"n": 1}})
    run = await outlast.finished_run(event_id)
    assert (run.status, run.output) == ("completed", {"a": 1, "b": 2, "c": 3, "n": 1})
    assert [s.id for s in run.steps] == ["one", "two", "three"]
    assert effects(tmp_path) == {"one:1": 1, "two:1": 1, "three:1": 1, "request:js4-app-steps": 1}


async def test_a_run_that_never_suspends_costs_one_request(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    """Async checkpointing (on by default in v4): the call carries `ctx.qi_id`, the SDK posts
    each step to `/v1/checkpoint/{run}/async` and returns the result in the same request."""
    await app.sync()
    ids = await outlast.send(*({"name": "js4/steps", "data": {"n": n}} for n in range(5)))
    runs = [await outlast.finished_run(event_id) for event_id in ids]
    assert [r.status for r in runs] == ["completed"] * 5
    assert all([s.id for s in r.steps] == ["one", "two", "three"] for r in runs)
    assert effects(tmp_path)["request:js4-app-steps"] == 5


async def test_race_mode_goes_on_with_the_winner(outlast: Outlast, app: SdkApp, tmp_path: Path) -> None:
    """`group.parallel` + `Promise.race`: the function goes on with the fast step's result while
    the slow one still runs (without race mode it would wait for the whole group). As on
    Inngest, the SDK still reports the slow step until it ends, so it runs once, to its end."""
    await app.sync()
    (event_id,) = await outlast.send({"name": "js4/race"})
    run = await outlast.finished_run(event_id)
    assert (run.status, run.output) == ("completed", "fast won")
    ended = {s.id: s.ended_at for s in run.steps}
    assert sorted(ended) == ["after", "fast", "slow"]
    assert ended["after"] is not None and ended["slow"] is not None and ended["after"] < ended["slow"]
    assert {k: v for k, v in effects(tmp_path).items() if not k.startswith("request:")} == {
        "fast": 1,
        "after": 1,
        "slow:start": 1,
    }
