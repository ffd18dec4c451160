"""`POST /v1/checkpoint/{run}/async` refuses what it must: a dispatch whose lease is not the
run's current one, or a run that has ended, is stale (409, the SDK stops); a body it cannot
read is a 400 naming the field; nothing is written in either case."""

from __future__ import annotations

from typing import Any

import httpx

from tests.interop.harness import Outlast, SdkApp

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
