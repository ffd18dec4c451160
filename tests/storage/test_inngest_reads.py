"""The Store's reads for Inngest's REST and GraphQL APIs, through the protocol, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from outlast.core.config import EventTrigger, FunctionConfig, TimeoutRule
from outlast.core.ids import new_ulid
from outlast.core.models import AppScope, EventRecord
from outlast.core.planner import Planner
from outlast.core.registry import Registry
from outlast.storage.base import Store

T0 = 1_700_000_000_000
APP = AppScope(app_id="reads")
FNS = [
    FunctionConfig(
        app_id="reads",
        id="slow",
        name="slow",
        triggers=(EventTrigger(event="r/go"),),
        timeouts=TimeoutRule(finish_ms=60_000),
    ),
    FunctionConfig(app_id="reads", id="also", name="also", triggers=(EventTrigger(event="r/go"),)),
]


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    s = make_store()
    planner = Planner()
    s.bind(planner)
    await s.open()
    await s.sync_functions("reads", FNS, T0)
    planner.registry = Registry((await s.load_functions())[1])
    yield s
    await s.close()


def event(at: int = T0, **data: Any) -> EventRecord:
    return EventRecord(id=new_ulid(at), name="r/go", data=data, user={}, ts=at)


async def test_runs_for_events_maps_each_event_to_its_runs(store: Store) -> None:
    first, second = event(n=1), event(n=2)
    await store.ingest([first, second], T0)
    found = await store.runs_for_events([first.id, second.id, "01ARZ3NDEKTSV4RRFFQ69G5FAV"])
    assert [sorted(r.function_id for r in found[e.id]) for e in (first, second)] == [["also", "slow"]] * 2
    assert found["01ARZ3NDEKTSV4RRFFQ69G5FAV"] == []
    assert all(r.event_ids == [first.id] for r in found[first.id])
    assert [r.id for r in found[first.id]] == sorted(r.id for r in found[first.id])  # oldest first
    assert len((await store.runs_for_events([first.id], limit_per_event=1))[first.id]) == 1
    assert await store.runs_for_events([]) == {}


async def test_run_jobs_are_the_queue_items_of_a_run_with_their_position(store: Store) -> None:
    e = event(n=1)
    await store.ingest([e], T0)
    runs = {r.function_id: r for r in (await store.runs_for_events([e.id]))[e.id]}
    [job] = await store.run_jobs(runs["slow"].id)
    ahead = int(runs["also"].id < runs["slow"].id)  # both due at T0: the smaller id first
    assert (job.kind, job.due_at, job.leased, job.position, job.timeout) == ("run", T0, False, ahead, None)
    assert len(await store.claim(APP, "w", 10, T0, 1_000)) == 2
    jobs = await store.run_jobs(runs["slow"].id)
    assert [(j.kind, j.due_at, j.leased, j.timeout) for j in jobs] == [
        ("run", T0 + 1_000, True, None),
        ("timeout", T0 + 60_000, False, "finish"),
    ]
    assert jobs[1].position == 2  # both leased run items come due before the timeout
    assert await store.cancel_run(runs["slow"].id, T0 + 10)
    assert await store.run_jobs(runs["slow"].id) == []
    assert await store.run_jobs("01ARZ3NDEKTSV4RRFFQ69G5FAV") == []


async def test_active_runs_with_triggers_pages_through_a_window(store: Store) -> None:
    for i in range(5):  # runs are created at ingest time, one a second
        await store.ingest([event(T0 + i * 1000, n=i)], T0 + i * 1000)
    page = await store.active_runs_with_triggers(
        app_id="reads", function_id="slow", since=T0 + 1000, until=T0 + 4000, after=None, limit=2
    )
    assert [trigger.data["n"] for _, trigger in page if trigger] == [1, 2]
    rest = await store.active_runs_with_triggers(
        app_id="reads", function_id="slow", since=T0 + 1000, until=T0 + 4000, after=page[-1][0], limit=2
    )
    assert [trigger.data["n"] for _, trigger in rest if trigger] == [3]
    assert await store.cancel_run(rest[0][0], T0 + 6_000)
    again = await store.active_runs_with_triggers(
        app_id="reads", function_id="slow", since=None, until=T0 + 10_000, after=None, limit=10
    )
    assert [trigger.data["n"] for _, trigger in again if trigger] == [0, 1, 2, 4]  # the cancelled one is gone


async def test_active_runs_with_triggers_merges_queued_and_running_runs_by_id(store: Store) -> None:
    for i in range(5):
        await store.ingest([event(T0 + i * 1000, n=i)], T0 + i * 1000)
    await store.claim(APP, "w", 4, T0 + 5_000, 60_000)  # runs 0 and 1 of both functions start
    page = await store.active_runs_with_triggers(
        app_id="reads", function_id="slow", since=None, until=T0 + 10_000, after=None, limit=3
    )
    assert [trigger.data["n"] for _, trigger in page if trigger] == [0, 1, 2]  # running, running, queued
    rest = await store.active_runs_with_triggers(
        app_id="reads", function_id="slow", since=None, until=T0 + 10_000, after=page[-1][0], limit=3
    )
    assert [trigger.data["n"] for _, trigger in rest if trigger] == [3, 4]
