"""`defer()` rows as the store keeps them: the `inngest/deferred.schedule` events of a run are
ingested in the transaction that ends it (completed, failed or cancelled), one per defer kept and
not aborted, and start the deferred function; a lost lease writes no defer at all."""

from __future__ import annotations

from typing import Any

from outlast.core.config import EventTrigger, FunctionConfig
from outlast.core.defers import DEFERRED_SCHEDULE, DeferAbort, DeferAdd, abort_write, defer_write
from outlast.core.models import Claimed, Finish, StepWrite, Suspend
from outlast.storage.base import Store
from outlast.storage.sql.commit import finishes
from tests.storage.contract import APP, APP_ID, FN, T0, claim_one, commit, define, event, event_names, run, runs, step

LATER = FunctionConfig(
    app_id=APP_ID,
    id="later",
    name="later",
    triggers=(EventTrigger(event=DEFERRED_SCHEDULE, expression=f"event.data._inngest.fn_slug == '{APP_ID}-later'"),),
)


def add(key: str, n: Any, *, slug: str = f"{APP_ID}-later") -> StepWrite:
    return defer_write({}, DeferAdd(key=key, step_id=key, function_slug=slug, input={"n": n}), [], T0)


def abort(key: str, target: str) -> StepWrite:
    return abort_write(DeferAbort(key=key, step_id=key, target=target), T0)


async def started(store: Store, *rows: StepWrite) -> Claimed:
    await define(store, FN, LATER)
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    assert (await store.commit(commit(c, T0, steps=[step("s", 1), *rows], outcome=Suspend(due_at=T0 + 10)))).ok
    return c


async def scheduled(store: Store) -> list[Any]:
    return sorted(e.data["n"] for e in await event_names(store, DEFERRED_SCHEDULE))


async def test_a_completed_run_schedules_its_defers_with_their_parent(store: Store) -> None:
    c = await started(store, add("d1", 1), add("d2", 2))
    assert await scheduled(store) == []  # not before the run ends
    again = await claim_one(store, "w", T0 + 10)
    assert (await store.commit(commit(again, T0 + 20, outcome=Finish(status="completed", output="ok")))).ok
    events = await event_names(store, DEFERRED_SCHEDULE)
    assert sorted(e.data["n"] for e in events) == [1, 2]
    assert events[0].data["_inngest"] == {
        "fn_slug": f"{APP_ID}-later",
        "parent_app_id": APP_ID,
        "parent_fn_id": FN.id,
        "parent_fn_slug": f"{APP_ID}-{FN.id}",
        "parent_run_id": c.run.run_id,
    }
    assert events[0].ts == T0 + 20
    assert sorted(r.function_id for r in await runs(store)) == ["fn", "later", "later"]


async def test_aborted_and_refused_defers_schedule_nothing(store: Store) -> None:
    refused = defer_write({}, DeferAdd(key="bad", step_id="bad", function_slug="x", input=[1]), [], T0)
    assert (refused.status, refused.error and refused.error["name"]) == ("failed", "DeferRejectedError")
    c = await started(store, add("d1", 1), add("d2", 2), abort("a2", "d2"), refused)
    again = await claim_one(store, "w", T0 + 10)
    assert (await store.commit(commit(again, T0 + 20, outcome=Finish(status="failed", error={"name": "E"})))).ok
    assert await scheduled(store) == [1]  # a failed run's defers are scheduled too, as Inngest does
    kinds = {s.key: (s.kind, s.status) for s in (await run(store, c.run.run_id)).steps}
    assert kinds["d2"] == ("defer", "completed") and kinds["a2"] == ("defer_abort", "completed")


async def test_a_cancelled_run_schedules_its_defers(store: Store) -> None:
    c = await started(store, add("d1", 1))
    assert await store.cancel_run(c.run.run_id, T0 + 5, reason="stop")
    assert await scheduled(store) == [1]


async def test_a_commit_that_lost_its_lease_writes_no_defer(store: Store) -> None:
    await define(store, FN, LATER)
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    stale = commit(c, T0, steps=[step("s", 1), add("d1", 1)], outcome=Suspend(due_at=T0 + 10))
    stale.lease_token = "not-the-lease"
    assert not (await store.commit(stale)).ok
    assert (await run(store, c.run.run_id)).steps == []
    assert (await store.commit(commit(c, T0 + 1, outcome=Finish(status="completed")))).ok
    assert await scheduled(store) == []


async def test_run_ends_committed_together_schedule_each_runs_own_defers(store: Store) -> None:
    """Group commit ends several runs in a few statements (`commit.finishes`); each run's defers
    are read for all of them at once and go out with their own run's end."""
    await define(store, FN, LATER)
    await store.ingest([event(at=T0), event(at=T0), event(at=T0)], T0)
    claimed = sorted(await store.claim(APP, "w", 10, T0, 1_000), key=lambda c: c.run.run_id)
    for n, c in enumerate(claimed):
        rows = [add(f"d{n}", n)] if n < 2 else []  # the third run defers nothing
        assert (await store.commit(commit(c, T0, steps=[step("s", 1), *rows], outcome=Suspend(due_at=T0 + 10)))).ok
    again = sorted(await store.claim(APP, "w", 10, T0 + 10, 1_000), key=lambda c: c.run.run_id)
    ends = [commit(c, T0 + 20, outcome=Finish(status="completed")) for c in again]
    sql: Any = store
    results = await sql._run(lambda tx: finishes(tx, sql.planner, ends))
    assert all(r.ok for r in results)
    events = await event_names(store, DEFERRED_SCHEDULE)
    assert sorted((e.data["n"], e.data["_inngest"]["parent_run_id"]) for e in events) == [
        (0, claimed[0].run.run_id),
        (1, claimed[1].run.run_id),
    ]
