"""A store reads no clock: every time it stores or compares, and the ids and step order it makes,
come from the caller's time (so a virtual clock drives a store as fully as the wall clock)."""

from __future__ import annotations

import time

import pytest

from outlast.core.config import TimeoutRule
from outlast.core.ids import ulid_floor
from outlast.core.models import Finish, RunPlan
from outlast.storage.base import Store
from tests.storage.contract import APP, T0, commit, define, event, function, run, step

TIMED = function("timed", timeouts=TimeoutRule(start_ms=60_000, finish_ms=60_000))


async def test_ingest_claims_commits_reruns_and_cancels_read_no_clock(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def wall_clock() -> float:
        raise AssertionError("a store read the wall clock")

    await define(store, TIMED)
    monkeypatch.setattr(time, "time", wall_clock)
    monkeypatch.setattr(time, "time_ns", wall_clock)
    await store.ingest([event()], T0)
    await store.ingest([event(i=i) for i in range(40)], T0)  # a bulk ingest
    claimed = await store.claim(APP, "w", 100, T0, 1_000)  # starts finish timeouts
    assert len(claimed) == 2 * 41  # the basic function and the timed one, per event
    first, other = claimed[0], claimed[1]
    assert (await store.commit(commit(first, T0, steps=[step("a", 1)]))).ok
    assert (await store.commit(commit(first, T0 + 1, steps=[step("b", 2)], outcome=Finish(status="completed")))).ok
    plan = RunPlan(
        run_id="rerun",
        app_id=first.run.app_id,
        function_id=first.run.function_id,
        event_ids=[e.id for e in first.run.events],
        created_at=T0 + 2,
        due_at=T0 + 2,
    )
    await store.rerun(
        plan, origin_run_id=first.run.run_id, keep_keys=["a"], edited=step("b", 3), from_step_key="b", now_ms=T0 + 2
    )
    assert await store.cancel_run(other.run.run_id, T0 + 3)
    monkeypatch.undo()
    assert [(s.key, s.output) for s in (await run(store, "rerun")).steps] == [("a", 1), ("b", 3)]


async def test_the_items_a_store_makes_carry_the_callers_time(store: Store) -> None:
    await define(store, TIMED)
    await store.ingest([event()], T0)
    [timed] = [c for c in await store.claim(APP, "w", 10, T0, 1_000) if c.run.function_id == "timed"]
    jobs = await store.run_jobs(timed.run.run_id)  # type: ignore[attr-defined]
    assert sorted(j.timeout or j.kind for j in jobs) == ["finish", "run", "start"]
    assert all(ulid_floor(T0) <= j.id < ulid_floor(T0 + 1) for j in jobs)
