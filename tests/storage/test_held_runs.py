"""Held runs (a Durable Endpoint's request runs its run's first attempt): the run starts
running with its item leased to the request, so no claim takes it while the lease holds; the
request commits under that lease; an id already used changes nothing."""

from __future__ import annotations

from outlast.core.models import Commit, RunPlan, Suspend
from outlast.storage.base import Store
from tests.storage.contract import APP, APP_ID, FN, LEASE, T0, claim_one, event, run, step

HOLD = 60_000


def plan(run_id: str, event_id: str) -> RunPlan:
    return RunPlan(
        run_id=run_id, app_id=APP_ID, function_id=FN.id, event_ids=[event_id], created_at=T0, due_at=T0 + HOLD
    )


async def test_a_held_run_is_claimed_only_once_its_request_lets_go(store: Store) -> None:
    await store.sync_functions(APP_ID, [FN], T0)
    trigger = event("inngest/http.request")
    run_id = "01JHELDHELDHELDHELDHELDHEL"
    item = await store.start_held_run(
        plan(run_id, trigger.id), trigger, lease_token="tok", owner="endpoint", until_ms=T0 + HOLD, now_ms=T0
    )
    assert item is not None
    started = await run(store, run_id)
    assert (started.status, started.started_at, started.event_ids) == ("running", T0, [trigger.id])
    assert await store.claim(APP, "worker", 10, T0 + HOLD - 1, LEASE) == []
    held = Commit(item_id=item, lease_token="tok", run_id=run_id, now_ms=T0 + 5, steps=[step("a", 1)])
    assert (await store.commit(held)).ok
    suspend = Commit(item_id=item, lease_token="tok", run_id=run_id, now_ms=T0 + 6, outcome=Suspend(due_at=T0 + 10))
    assert (await store.commit(suspend)).ok
    resumed = await claim_one(store, "worker", T0 + 10)
    assert (resumed.run.run_id, list(resumed.run.memo)) == (run_id, ["a"])

    again = await store.start_held_run(
        plan(run_id, trigger.id), event("inngest/http.request"), lease_token="t2", owner="e", until_ms=T0, now_ms=T0
    )
    assert again is None
    assert [s.key for s in (await run(store, run_id)).steps] == ["a"]
