"""The Store contract: every backend must pass these, through the protocol alone."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from outlast.client import Outlast
from outlast.core.clock import VirtualClock
from outlast.core.engine import Engine
from outlast.core.ids import new_ulid
from outlast.events import EventRecord
from outlast.storage.base import Commit, Finish, RunFilter, StepWrite, Store, Suspend, WorkerInfo

T0 = 1_700_000_000_000
LEASE = 1_000


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    app = Outlast("contract", database_url="memory://")

    @app.function(id="fn", trigger="c/go")
    async def fn(ctx: Any) -> None:
        return None

    s = make_store()
    engine = Engine(app, s, VirtualClock(T0), app.settings)  # binds the planner, syncs `fn`
    await engine.open()
    yield s
    await engine.close()


def event(name: str = "c/go", dedupe_id: str | None = None, **data: Any) -> EventRecord:
    return EventRecord(new_ulid(T0), name, data, {}, T0, dedupe_id)


async def claim_one(store: Store, owner: str, now: int) -> Any:
    claimed = await store.claim("contract", owner, 10, now, LEASE)
    assert len(claimed) == 1
    return claimed[0]


async def test_ingest_creates_a_queued_run_and_returns_event_ids(store: Store) -> None:
    e = event(n=1)
    assert await store.ingest([e], T0) == [e.id]
    [run] = await store.list_runs(RunFilter(app_id="contract"))
    assert (run.function_id, run.status, run.event_ids) == ("fn", "queued", [e.id])
    assert (await store.get_events([e.id]))[0].data == {"n": 1}


async def test_ingest_is_idempotent_for_the_same_event_and_dedupes_ids(store: Store) -> None:
    e = event()
    await store.ingest([e], T0)
    await store.ingest([e], T0)  # a retried ingest of the same record
    await store.ingest([event(dedupe_id="x"), event(dedupe_id="x")], T0)
    assert len(await store.list_runs(RunFilter(app_id="contract"))) == 2


async def test_a_claimed_item_is_invisible_until_its_lease_expires(store: Store) -> None:
    await store.ingest([event()], T0)
    first = await claim_one(store, "a", T0)
    assert first.run.status == "running" and first.run.events[0].name == "c/go"
    assert await store.claim("contract", "b", 10, T0 + LEASE - 1, LEASE) == []
    second = await claim_one(store, "b", T0 + LEASE)
    assert second.item_id == first.item_id and second.lease_token != first.lease_token


async def test_a_worker_whose_lease_expired_cannot_commit_over_the_new_owner(store: Store) -> None:
    await store.ingest([event()], T0)
    old = await claim_one(store, "a", T0)
    new = await claim_one(store, "b", T0 + LEASE)
    write = StepWrite("k1", "s1", "run", "completed", 1, T0, T0, "stale")
    lost = await store.commit(Commit(old.item_id, old.lease_token, old.run.run_id, T0 + LEASE, T0 + 2 * LEASE,
                                     steps=[write], outcome=Finish("completed", "stale")))
    assert not lost.ok and lost.reason == "lost"
    ok = await store.commit(Commit(new.item_id, new.lease_token, new.run.run_id, T0 + LEASE, T0 + 2 * LEASE,
                                   steps=[StepWrite("k1", "s1", "run", "completed", 1, T0, T0, "fresh")]))
    assert ok.ok
    run = await store.get_run(new.run.run_id)
    assert run is not None and run.status == "running" and [s.output for s in run.steps] == ["fresh"]


async def test_a_final_memo_row_is_never_overwritten(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    for output in ("first", "second"):
        await store.commit(Commit(c.item_id, c.lease_token, c.run.run_id, T0, T0 + LEASE,
                                  steps=[StepWrite("k", "s", "run", "completed", 1, T0, T0, output)]))
    run = await store.get_run(c.run.run_id)
    assert run is not None and [s.output for s in run.steps] == ["first"]


async def test_a_pending_sleep_resolves_when_its_run_is_claimed_after_the_deadline(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    sleep = StepWrite("k", "nap", "sleep", "sleeping", 1, T0, None, None, None, T0 + 5_000, None)
    await store.commit(Commit(c.item_id, c.lease_token, c.run.run_id, T0, T0 + LEASE, steps=[sleep],
                              outcome=Suspend(T0 + 5_000)))
    assert await store.next_due_at("contract") == T0 + 5_000
    assert await store.claim("contract", "a", 10, T0 + 4_999, LEASE) == []
    resumed = await claim_one(store, "a", T0 + 5_000)
    assert resumed.run.memo["k"].status == "completed"


async def test_finish_ends_the_run_and_emits_system_events(store: Store) -> None:
    e = event()
    await store.ingest([e], T0)
    c = await claim_one(store, "a", T0)
    assert (await store.commit(Commit(c.item_id, c.lease_token, c.run.run_id, T0, T0 + LEASE,
                                      outcome=Finish("failed", error={"name": "E", "message": "m"})))).ok
    run = await store.get_run(c.run.run_id)
    assert run is not None and run.status == "failed" and run.error == {"name": "E", "message": "m"}
    assert await store.next_due_at("contract") is None
    assert not await store.cancel_run(c.run.run_id, T0)  # not active any more


async def test_cancel_run_makes_the_owner_lose_its_lease(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    assert await store.cancel_run(c.run.run_id, T0)
    result = await store.commit(Commit(c.item_id, c.lease_token, c.run.run_id, T0, T0 + LEASE,
                                       outcome=Finish("completed", 1)))
    run = await store.get_run(c.run.run_id)
    assert not result.ok and run is not None and run.status == "cancelled"


async def test_extend_leases_reports_lost_items(store: Store) -> None:
    await store.ingest([event(), event()], T0)
    a, b = await store.claim("contract", "a", 10, T0, LEASE)
    await store.cancel_run(b.run.run_id, T0)
    lost = await store.extend_leases("a", {a.item_id: a.lease_token, b.item_id: b.lease_token}, T0 + 10 * LEASE)
    assert lost == {b.item_id}
    assert await store.claim("contract", "z", 10, T0 + 5 * LEASE, LEASE) == []


async def test_functions_are_versioned_and_loaded(store: Store) -> None:
    version, configs = await store.load_functions()
    assert [c["id"] for c in configs] == ["fn"]
    config = dict(configs[0], name="renamed")
    assert await store.sync_functions("contract", [config], T0)
    assert not await store.sync_functions("contract", [config], T0)
    assert await store.functions_version() > version


async def test_workers_are_listed_until_they_go_quiet(store: Store) -> None:
    await store.heartbeat(WorkerInfo("w1", "contract", "host", 1, T0, T0))
    await store.heartbeat(WorkerInfo("w1", "contract", "host", 1, T0, T0 + 5_000))
    [w] = await store.list_workers(T0)
    assert (w.id, w.heartbeat_at) == ("w1", T0 + 5_000)
    assert await store.list_workers(T0 + 6_000) == []
