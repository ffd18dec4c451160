"""A targeted call (the server asks the app to run one planned step) answered with a 206 whose
opcodes end the run (`RunComplete`, with or without the step's own opcode): as on Inngest,
which handles each opcode of a reply whatever the call was for (`executor.handleGeneratorOp`),
the step's result is kept and the run ends with the function's output, in that one call; it is
not a `StepNotRunError` retried."""

from __future__ import annotations

import pytest

from tests.interop.fake_app import FakeApp
from tests.interop.harness import Outlast


@pytest.mark.parametrize(("answer", "steps"), [("step-and-complete", [("s", 1)]), ("complete-206", [])])
async def test_a_targeted_call_that_ends_the_run_completes_it(
    outlast: Outlast, answer: str, steps: list[tuple[str, int]]
) -> None:
    async with FakeApp(["plan", answer]) as app:
        await app.register(outlast.url, retries=1)
        [event] = await outlast.send({"name": "fake/go"})
        run = await outlast.finished_run(event)
    assert (run.status, run.output, run.failures) == ("completed", "done", []), run
    assert [(s.id, s.output) for s in run.steps] == steps
    assert app.step_ids == ["step", "7f7e"]  # discovery, then the targeted call: nothing more
