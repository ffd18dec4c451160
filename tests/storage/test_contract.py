"""The Store contract: every backend must pass these, through the protocol alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from outlast.core.ids import new_ulid
from outlast.core.models import (
    EventFilter,
    EventRecord,
    Finish,
    LogLine,
    RunFilter,
    Suspend,
    WaitSpec,
    WorkerInfo,
)
from outlast.errors import StoreDataError
from outlast.storage.base import Store
from tests.storage.contract import APP, FN, LEASE, T0, claim_one, commit, event, step


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
    assert await store.claim(APP, "b", 10, T0 + LEASE - 1, LEASE) == []
    second = await claim_one(store, "b", T0 + LEASE)
    assert second.item_id == first.item_id and second.lease_token != first.lease_token


async def test_a_worker_whose_lease_expired_cannot_commit_over_the_new_owner(store: Store) -> None:
    await store.ingest([event()], T0)
    old = await claim_one(store, "a", T0)
    new = await claim_one(store, "b", T0 + LEASE)
    lost = await store.commit(
        commit(old, T0 + LEASE, steps=[step("k1", "stale")], outcome=Finish(status="completed", output="stale"))
    )
    assert not lost.ok and lost.reason == "lost"
    ok = await store.commit(commit(new, T0 + LEASE, steps=[step("k1", "fresh")]))
    assert ok.ok
    run = await store.get_run(new.run.run_id)
    assert run is not None and run.status == "running" and [s.output for s in run.steps] == ["fresh"]


async def test_a_final_memo_row_is_never_overwritten(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    for output in ("first", "second"):
        await store.commit(commit(c, T0, steps=[step("k", output)]))
    run = await store.get_run(c.run.run_id)
    assert run is not None and [s.output for s in run.steps] == ["first"]


async def test_a_pending_sleep_resolves_when_its_run_is_claimed_after_the_deadline(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    sleep = step("k", kind="sleep", status="sleeping", ended_at=None, deadline=T0 + 5_000)
    await store.commit(commit(c, T0, steps=[sleep], outcome=Suspend(due_at=T0 + 5_000)))
    assert await store.next_due_at(APP) == T0 + 5_000
    assert await store.claim(APP, "a", 10, T0 + 4_999, LEASE) == []
    resumed = await claim_one(store, "a", T0 + 5_000)
    assert resumed.run.memo["k"].status == "completed"


async def test_finish_ends_the_run_and_emits_system_events(store: Store) -> None:
    e = event(n=1)
    await store.ingest([e], T0)
    c = await claim_one(store, "a", T0)
    error = {"name": "E", "message": "m"}
    assert (await store.commit(commit(c, T0 + 5, outcome=Finish(status="failed", error=error)))).ok
    run = await store.get_run(c.run.run_id)
    assert run is not None and run.status == "failed" and run.error == error
    assert await store.next_due_at(APP) is None
    assert not await store.cancel_run(c.run.run_id, T0)  # not active any more

    [finished] = await store.list_events(EventFilter(name="inngest/function.finished"))
    [failed] = await store.list_events(EventFilter(name="inngest/function.failed"))
    assert await store.list_events(EventFilter(name="inngest/function.cancelled")) == []
    assert finished.data == failed.data and (finished.ts, failed.ts) == (T0 + 5, T0 + 5)
    assert finished.data["function_id"] == "contract-fn" and finished.data["run_id"] == c.run.run_id
    assert finished.data["event"]["id"] == e.id and finished.data["event"]["data"] == {"n": 1}
    assert [x["id"] for x in finished.data["events"]] == [e.id]
    assert finished.data["error"] == error and "result" not in finished.data
    assert finished.data["_inngest"]["status"] == "failed"


async def test_a_completed_run_emits_only_function_finished_with_its_result(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    assert (await store.commit(commit(c, T0, outcome=Finish(status="completed", output={"v": 1})))).ok
    [finished] = await store.list_events(EventFilter(name="inngest/function.finished"))
    assert (finished.data["run_id"], finished.data["result"]) == (c.run.run_id, {"v": 1})
    assert "error" not in finished.data and finished.data["_inngest"]["status"] == "completed"
    assert await store.list_events(EventFilter(name="inngest/function.failed")) == []


async def test_cancel_run_makes_the_owner_lose_its_lease(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    assert await store.cancel_run(c.run.run_id, T0)
    result = await store.commit(commit(c, T0, outcome=Finish(status="completed", output=1)))
    run = await store.get_run(c.run.run_id)
    assert not result.ok and run is not None and run.status == "cancelled"


async def test_extend_leases_reports_lost_items(store: Store) -> None:
    await store.ingest([event(), event()], T0)
    a, b = await store.claim(APP, "a", 10, T0, LEASE)
    await store.cancel_run(b.run.run_id, T0)
    lost = await store.extend_leases("a", {a.item_id: a.lease_token, b.item_id: b.lease_token}, T0 + 10 * LEASE)
    assert lost == {b.item_id}
    assert await store.claim(APP, "z", 10, T0 + 5 * LEASE, LEASE) == []


async def test_functions_are_versioned_and_loaded(store: Store) -> None:
    version, configs = await store.load_functions()
    assert configs == [FN]
    config = replace(FN, name="renamed")
    assert await store.sync_functions("contract", [config], T0)
    assert not await store.sync_functions("contract", [config], T0)
    assert await store.functions_version() > version


async def test_workers_are_listed_until_they_go_quiet(store: Store) -> None:
    info = WorkerInfo(id="w1", app_id="contract", host="host", pid=1, started_at=T0, heartbeat_at=T0)
    await store.heartbeat(info)
    await store.heartbeat(replace(info, heartbeat_at=T0 + 5_000))
    [w] = await store.list_workers(T0)
    assert (w.id, w.heartbeat_at) == ("w1", T0 + 5_000)
    assert await store.list_workers(T0 + 6_000) == []


async def test_a_connect_workers_sdk_and_capacity_are_kept(store: Store) -> None:
    info = WorkerInfo(
        id="c1", app_id="contract", host="h via Connect", pid=0, started_at=T0, heartbeat_at=T0, in_flight=2
    )
    await store.heartbeat(replace(info, sdk="py", sdk_version="0.5.18", capacity=None))
    await store.heartbeat(replace(info, heartbeat_at=T0 + 1, sdk="py", sdk_version="0.5.19", capacity=4))
    await store.heartbeat(replace(info, id="w1", sdk=None))
    connected, own = await store.list_workers(T0)
    assert (connected.sdk, connected.sdk_version, connected.capacity, connected.in_flight) == ("py", "0.5.19", 4, 2)
    assert connected.connected and not own.connected and (own.sdk, own.capacity) == (None, None)


async def test_runs_page_newest_first_with_a_cursor_and_a_time_window(store: Store) -> None:
    events = [EventRecord(id=new_ulid(T0 + i * 1000), name="c/go", data={"i": i}, user={}, ts=T0) for i in range(5)]
    for i, e in enumerate(events):
        await store.ingest([e], T0 + i * 1000)
    first = await store.list_runs(RunFilter(app_id="contract", limit=2))
    second = await store.list_runs(RunFilter(app_id="contract", limit=2, before=first[-1].id))
    rest = await store.list_runs(RunFilter(app_id="contract", limit=10, before=second[-1].id))
    ids = [r.id for r in first + second + rest]
    assert len(ids) == 5 and ids == sorted(ids, reverse=True)
    window = await store.list_runs(RunFilter(app_id="contract", since=T0 + 1000, until=T0 + 3000))
    assert [r.event_ids for r in window] == [[events[2].id], [events[1].id]]


async def test_events_are_listed_by_name_newest_first(store: Store) -> None:
    await store.ingest([event("c/go"), event("c/other"), event("c/go")], T0)
    named = await store.list_events(EventFilter(name="c/go"))
    assert [e.name for e in named] == ["c/go", "c/go"] and named[0].id > named[1].id
    everything = await store.list_events(EventFilter(system=False, limit=10))
    assert len(everything) == 3


async def test_event_effects_tell_which_runs_an_event_started_resumed_or_cancelled(store: Store) -> None:
    trigger = event(order="o1")
    await store.ingest([trigger], T0)
    c = await claim_one(store, "a", T0)
    wait = WaitSpec(
        kind="wait",
        event_name="c/paid",
        expression=None,
        match_field="data.order",
        match_value='"o1"',
        expires_at=T0 + 60_000,
        step_key="w",
    )
    await store.commit(
        commit(
            c,
            T0,
            steps=[step("w", kind="wait_for_event", status="waiting", ended_at=None, deadline=T0 + 60_000)],
            waits=[wait],
            outcome=Suspend(due_at=T0 + 60_000),
        )
    )
    paid = event("c/paid", order="o1")
    await store.ingest([paid], T0 + 1)
    assert [(x.run_id, x.effect) for x in await store.event_effects(trigger.id)] == [(c.run.run_id, "started")]
    assert [(x.run_id, x.effect) for x in await store.event_effects(paid.id)] == [(c.run.run_id, "resumed")]
    resumed = await claim_one(store, "a", T0 + 2)
    assert resumed.run.memo["w"].output["data"] == {"order": "o1"}


async def test_log_lines_are_kept_with_their_run_in_order(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    lines = [LogLine(ts=T0 + i, level="INFO", message=f"line {i}") for i in range(3)]
    assert (await store.commit(commit(c, T0, steps=[step("k")], logs=lines))).ok
    assert [line.message for line in await store.run_logs(c.run.run_id)] == ["line 0", "line 1", "line 2"]


async def test_a_value_the_database_refuses_stores_nothing_and_the_store_stays_usable(store: Store) -> None:
    good, bad = event(n=1), replace(event(n=2), ts=2**70)
    with pytest.raises(StoreDataError, match="refused a value"):
        await store.ingest([good, bad], T0)
    assert await store.get_events([good.id]) == [] and await store.list_runs(RunFilter()) == []
    assert await store.ingest([good], T0) == [good.id]
    assert len(await store.list_runs(RunFilter())) == 1
