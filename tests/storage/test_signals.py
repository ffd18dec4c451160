"""Signals as the Store contract states them: delivery and resolution in one transaction, held
signals consumed once, one wait per name, and two senders racing resuming one run once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from outlast.core.models import Claimed, SignalWait, Suspend
from outlast.core.planner import Planner
from outlast.storage.base import Store
from tests.storage.contract import APP, FN, LEASE, T0, claim_one, commit, define, event, pending, run

WAIT_MS = 60_000


async def signal_wait(store: Store, signal: str, *, at: int = T0, replace: bool = False, key: str = "s") -> Claimed:
    """A run that stores a signal wait on `signal` and suspends until the wait's timeout."""
    await store.ingest([event(at=at)], at)
    [c] = [c for c in await store.claim(APP, "w", 10, at, LEASE) if not c.run.memo]  # not a resumed one
    row = pending(key, kind="wait_for_signal", status="waiting", deadline=at + WAIT_MS)
    wait = SignalWait(signal=signal, step_key=key, expires_at=at + WAIT_MS, replace=replace)
    suspend = Suspend(due_at=at + WAIT_MS)
    assert (await store.commit(commit(c, at, steps=[row], signal_waits=[wait], outcome=suspend))).ok
    return c


async def step_of(store: Store, run_id: str, key: str = "s") -> Any:
    return next(s for s in (await run(store, run_id)).steps if s.key == key)


async def test_a_signal_completes_the_waiting_step_and_makes_its_run_due(store: Store) -> None:
    c = await signal_wait(store, "sig")
    assert await store.send_signal("other", {}, T0 + 1, None) is None
    assert await store.send_signal("sig", {"a": 1}, T0 + 2, None) == c.run.run_id
    step = await step_of(store, c.run.run_id)
    assert (step.status, step.output, step.ended_at) == ("completed", {"signal": "sig", "data": {"a": 1}}, T0 + 2)
    resumed = await claim_one(store, "w", T0 + 2)  # due at once, not at the wait's timeout
    assert resumed.run.memo["s"].output == {"signal": "sig", "data": {"a": 1}}
    assert await store.send_signal("sig", {"a": 2}, T0 + 3, None) is None


async def test_an_expired_wait_is_not_resolved_and_times_out_with_none(store: Store) -> None:
    c = await signal_wait(store, "sig")
    assert await store.send_signal("sig", {}, T0 + WAIT_MS, None) is None
    resumed = await claim_one(store, "w", T0 + WAIT_MS)
    assert (resumed.run.memo["s"].status, resumed.run.memo["s"].output) == ("completed", None)
    assert resumed.run.run_id == c.run.run_id


async def test_a_held_signal_is_given_to_the_first_wait_that_begins_in_time(store: Store) -> None:
    assert await store.send_signal("sig", {"n": 1}, T0, T0 + 1_000) is None
    assert await store.send_signal("sig", {"n": 2}, T0 + 1, T0 + 1_000) is None
    first = await signal_wait(store, "sig", at=T0 + 10)
    assert (await step_of(store, first.run.run_id)).output["data"] == {"n": 1}  # oldest first, at once
    second = await signal_wait(store, "sig", at=T0 + 20)
    assert (await step_of(store, second.run.run_id)).output["data"] == {"n": 2}
    third = await signal_wait(store, "sig", at=T0 + 30)
    assert (await step_of(store, third.run.run_id)).status == "waiting"  # both were consumed


async def test_a_held_signal_runs_out(store: Store) -> None:
    assert await store.send_signal("sig", {"n": 1}, T0, T0 + 1_000) is None
    c = await signal_wait(store, "sig", at=T0 + 1_000)
    assert (await step_of(store, c.run.run_id)).status == "waiting"


async def test_a_second_wait_on_a_name_fails_unless_it_replaces(store: Store) -> None:
    first = await signal_wait(store, "sig")
    second = await signal_wait(store, "sig", at=T0 + 1)
    failed = await step_of(store, second.run.run_id)
    assert (failed.status, failed.error["name"]) == ("failed", "SignalConflictError")
    third = await signal_wait(store, "sig", at=T0 + 2, replace=True)
    assert await store.send_signal("sig", {}, T0 + 3, None) == third.run.run_id
    assert (await step_of(store, first.run.run_id)).status == "waiting"  # until its own timeout


async def test_a_wait_takes_a_name_whose_wait_expired(store: Store) -> None:
    await signal_wait(store, "sig")
    later = await signal_wait(store, "sig", at=T0 + WAIT_MS)
    assert (await step_of(store, later.run.run_id)).status == "waiting"
    assert await store.send_signal("sig", {}, T0 + WAIT_MS + 1, None) == later.run.run_id


async def test_a_cancelled_run_frees_its_name(store: Store) -> None:
    c = await signal_wait(store, "sig")
    assert await store.cancel_run(c.run.run_id, T0 + 1)
    assert await store.send_signal("sig", {}, T0 + 2, None) is None
    later = await signal_wait(store, "sig", at=T0 + 3)
    assert (await step_of(store, later.run.run_id)).status == "waiting"


async def test_two_senders_racing_resume_one_run_once(make_store: Callable[[], Store]) -> None:
    """Two stores (two connection pools on PostgreSQL) send every signal at the same time."""
    stores = [make_store(), make_store()]
    for s in stores:
        s.bind(Planner())
        await s.open()
        await define(s, FN)
    try:
        waiting = [await signal_wait(stores[0], f"sig-{i}", at=T0 + i) for i in range(20)]
        now = T0 + 100
        results = await asyncio.gather(
            *(s.send_signal(f"sig-{i}", {"by": n}, now, None) for i in range(20) for n, s in enumerate(stores))
        )
        for i, c in enumerate(waiting):
            pair = results[2 * i : 2 * i + 2]
            assert sorted(pair, key=str) == sorted([c.run.run_id, None], key=str), pair
            assert (await step_of(stores[0], c.run.run_id)).output["data"] in ({"by": 0}, {"by": 1})
    finally:
        for s in stores:
            await s.close()


async def test_retention_removes_expired_held_signals(store: Store) -> None:
    assert await store.send_signal("old", {}, T0, T0 + 1_000) is None
    assert await store.send_signal("new", {"n": 1}, T0, T0 + 10_000) is None
    pruned = await store.prune(before_ms=T0, now_ms=T0 + 5_000, limit=100)
    assert pruned.flow_keys == 1
    c = await signal_wait(store, "new", at=T0 + 6_000)
    assert (await step_of(store, c.run.run_id)).output["data"] == {"n": 1}  # the unexpired one was kept
