"""What Inngest's own dev server does, checked on a real inngest-py app: the behaviours the
official inngest-py function suite (`tests/test_inngest/test_function`) checks, one test each.

- an app's error object is stored whole (its `code`), and `inngest/function.failed` describes
  it as Inngest does (`"error": "invalid status code: 500"`);
- a dev server takes a 1 MiB event (Inngest's dev server takes up to 3 MiB), and a batch of
  large events, past what a call request carries, runs and reads back whole over GraphQL;
- a parallel group costs the requests it costs on Inngest, and the step after it runs at once;
- a step that disappears from a parallel group fails the run with the SDK's own error;
- function-level attempts count afresh once the function makes progress;
- race mode (`parallel_mode=RACE`) discovers again after each step of the group;
- singleton `skip` skips a run while one is active, `cancel` cancels the active one;
- a `cancel` whose `if` does not match leaves the run alone, one that matches cancels it;
- an invoke that times out raises `InngestInvokeTimeoutError` in the function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.interop.harness import Outlast, SdkApp, effects


async def _failed_output(outlast: Outlast, **data: Any) -> dict[str, Any]:
    (event_id,) = await outlast.send({"name": "py/coded", "data": data})
    run = await outlast.finished_run(event_id)
    assert run.status == "failed", run
    assert isinstance(run.error, dict)
    return run.error


async def test_error_codes_are_the_sdks(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    refused = await _failed_output(outlast, case="non_retriable")
    assert (refused["code"], refused["name"], refused["message"]) == (
        "non_retriable_error",
        "NonRetriableError",
        "no retries for this",
    )
    assert (await _failed_output(outlast, case="unserializable"))["code"] == "output_unserializable"
    nested = await _failed_output(outlast, case="nested")
    assert nested["code"] == "step_errored" and "Nested steps are not supported" in nested["message"]


async def test_the_failure_event_describes_the_answer_as_inngest_does(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    (event_id,) = await outlast.send({"name": "py/coded", "data": {"case": "non_retriable"}})
    await outlast.finished_run(event_id)
    async with httpx.AsyncClient(base_url=outlast.url) as client:
        found = (await client.get("/v1/events", params={"name": "inngest/function.failed"})).json()["data"]
    failed = [e for e in found if e["data"]["event"]["id"] == event_id]
    assert len(failed) == 1
    error = failed[0]["data"]["error"]
    assert error["error"] == "invalid status code: 500"
    assert (error["name"], error["message"]) == ("NonRetriableError", "no retries for this")
    assert "code" not in error


async def test_a_dev_server_takes_a_one_mib_event(outlast: Outlast) -> None:
    async with httpx.AsyncClient(base_url=outlast.url) as client:
        reply = await client.post("/e/dev-key", json={"name": "py/big-event", "data": {"x": "x" * (1024 * 1024)}})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["ids"]) == 1


async def test_a_batch_of_large_events_runs_and_reads_back_whole(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    pad = "a" * (3 * 1000 * 1000 - 100)  # three events under the 3 MB each, past 8 MiB together
    ids = await outlast.send(*({"name": "py/batch", "data": {"i": i, "pad": pad}} for i in range(3)))
    run = await outlast.finished_run(ids[0], timeout=60)
    assert (run.status, run.output) == ("completed", [0, 1, 2]), run.error
    query = "query($id: String!) { run(runID: $id) { status } runTrigger(runID: $id) { payloads } }"
    async with httpx.AsyncClient(base_url=outlast.url, timeout=60) as client:
        answer = (await client.post("/v0/gql", json={"query": query, "variables": {"id": run.id}})).json()
    assert answer.get("errors") is None, answer.get("errors")
    assert answer["data"]["run"]["status"] == "COMPLETED" and len(answer["data"]["runTrigger"]["payloads"]) == 3


async def test_a_parallel_group_costs_the_requests_it_costs_on_inngest(
    outlast: Outlast, py_app: SdkApp, tmp_path: Path
) -> None:
    await py_app.sync()
    (event_id,) = await outlast.send({"name": "py/fan"})
    run = await outlast.finished_run(event_id)
    assert run.status == "completed"
    # discovery; 1a, 1b and send targeted; the invoke resumes the run, which runs `after` at
    # once; the last call returns: 6, as on Inngest (no discovery while the invoke is pending)
    assert effects(tmp_path)["request:fan"] == 6
    assert effects(tmp_path)["after:fan"] == 1


async def test_the_step_after_a_group_is_run_at_once_not_planned(
    outlast: Outlast, py_app: SdkApp, tmp_path: Path
) -> None:
    await py_app.sync()
    (event_id,) = await outlast.send({"name": "py/converge"})
    run = await outlast.finished_run(event_id)
    assert (run.status, run.output) == ("completed", "done")
    # discovery, 1.1, 1.2, then one call runs `converge` (StepRun, not StepPlanned), one returns
    assert effects(tmp_path)["request:converge"] == 5


async def test_a_parallel_step_that_disappears_fails_the_run(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    (event_id,) = await outlast.send({"name": "py/disappears"})
    run = await outlast.finished_run(event_id)
    assert run.status == "failed"
    assert run.error == {
        "code": "step_unexpected",
        "message": 'found step "after" when targeting a different step',
        "name": "StepUnexpectedError",
        "stack": None,
    }


async def test_attempts_count_afresh_after_progress(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    (event_id,) = await outlast.send({"name": "py/fresh"})
    run = await outlast.finished_run(event_id)
    assert (run.status, run.output) == ("completed", "done")
    assert [s.id for s in run.steps] == ["step_1", "step_2", "step_3"]


async def test_race_mode_discovers_after_each_step(outlast: Outlast, py_app: SdkApp, tmp_path: Path) -> None:
    """Each branch goes on at its own pace: the fast one's second step runs before the slow one's
    first ends; 9 requests (a plan, 4 steps, a discovery after each), as on Inngest."""
    await py_app.sync()
    (event_id,) = await outlast.send({"name": "py/race"})
    run = await outlast.finished_run(event_id)
    assert run.status == "completed"
    order = [line for line in (tmp_path / "effects.log").read_text().splitlines() if line.startswith("order:")]
    assert order == ["order:a.1", "order:a.2", "order:b.1", "order:b.2"]
    assert effects(tmp_path)["request:race"] == 9


async def _runs(outlast: Outlast, event_ids: list[str]) -> list[Any]:
    return [r for e in event_ids for r in await outlast.runs_of(e)]


async def test_singleton_skips_or_cancels_as_inngest_does(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    skip = await outlast.send({"name": "py/single-skip"}, {"name": "py/single-skip"})
    assert (await outlast.finished_run(skip[0])).status == "completed"
    runs = await _runs(outlast, skip)
    assert sorted(r.status for r in runs) in (["completed"], ["completed", "skipped"]), runs  # one ran

    [first] = await outlast.send({"name": "py/single-cancel"})

    async def running() -> bool:
        return any(r.status == "running" for r in await outlast.runs_of(first))

    await outlast.wait(running, 30, "the first singleton run to start")
    [second] = await outlast.send({"name": "py/single-cancel"})
    assert (await outlast.finished_run(first)).status == "cancelled"
    assert (await outlast.finished_run(second)).status == "completed"


async def test_a_cancel_event_cancels_only_when_its_if_matches(outlast: Outlast, py_app: SdkApp) -> None:
    await py_app.sync()
    kept, cancelled = await outlast.send(
        {"name": "py/cancellable", "data": {"id": 123}}, {"name": "py/cancellable", "data": {"id": 789}}
    )

    async def both_running() -> bool:
        runs = await _runs(outlast, [kept, cancelled])
        return len(runs) == 2 and all(r.status == "running" for r in runs)

    await outlast.wait(both_running, 30, "both runs to start")
    await outlast.send({"name": "py/cancellable.cancel", "data": {"id": 456}})
    await outlast.send({"name": "py/cancellable.cancel", "data": {"id": 789}})
    assert (await outlast.finished_run(kept)).output == "not cancelled"
    assert (await outlast.finished_run(cancelled)).status == "cancelled"


async def test_an_invoke_that_times_out_raises_in_the_function(
    outlast: Outlast, py_app: SdkApp, tmp_path: Path
) -> None:
    await py_app.sync()
    [event_id] = await outlast.send({"name": "py/impatient"})
    run = await outlast.finished_run(event_id)
    assert run.status == "failed"
    assert effects(tmp_path)["invoke-error:InngestInvokeTimeoutError"] == 1
