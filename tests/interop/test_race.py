"""inngest@4's race mode (`group.parallel` + `Promise.race`, steps sent with `parallelMode:
"race"`) with a losing branch of several steps, on a real `outlast dev`.

What Inngest does, read from its sources: race mode only changes when the server discovers
again (after each step of the group, not once the whole group has resolved: `ParallelModeRace`
in `pkg/enums/parallelmode.go`, `shouldEnqueueDiscovery` in the executor), so the function goes
on with the winner at once. The server cancels nothing; what a loser does next is the SDK's
answer: inngest-js keeps reporting a step it has found until it is memoized (it answers
`steps-found`, not `RunComplete`, while one is left), and once the function has returned it
reaches no further step of the losing branch. So a loser's step already under way (here a
sleep) is finished and the run ends after it, and the loser's later steps never run."""

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


async def test_the_winner_goes_on_and_the_losing_branch_stops_where_it_was(
    outlast: Outlast, app: SdkApp, tmp_path: Path
) -> None:
    await app.sync()
    (event_id,) = await outlast.send({"name": "js4/race-branches"})
    run = await outlast.finished_run(event_id, timeout=60.0)
    assert (run.status, run.output) == ("completed", "quick won")
    ended = {s.id: s.ended_at for s in run.steps}
    assert sorted(ended) == ["nap", "quick", "then"]  # the loser's "late" step was never run
    assert all(at is not None for at in ended.values())
    assert ended["quick"] <= ended["then"] < ended["nap"]  # on with the winner before the loser's sleep ended
    assert run.ended_at is not None and run.ended_at >= ended["nap"]
    assert {k: v for k, v in effects(tmp_path).items() if not k.startswith("request:")} == {"quick": 1, "then": 1}
