"""Leases: what each kind of commit does to the lease, what a lost lease forbids, extending and
releasing."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from outlast.core.models import Finish, LogLine, Suspend
from outlast.storage.base import Store
from tests.storage.contract import APP, LEASE, NO_CRASH_BACKOFF, T0, claim_one, commit, event, event_names, run, step


async def test_a_checkpoint_leaves_the_lease_as_it_is(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    assert (await store.commit(commit(c, T0 + 500, steps=[step("k1")]))).ok
    assert (
        await store.commit(commit(c, T0 + 600, steps=[step("k2")], logs=[LogLine(ts=T0, level="INFO", message="m")]))
    ).ok
    assert await store.next_due_at(APP) == T0 + LEASE  # not extended by either commit
    assert await store.claim(APP, "b", 10, T0 + LEASE - 1, LEASE) == []
    taken = await claim_one(store, "b", T0 + LEASE)
    assert sorted(taken.run.memo) == ["k1", "k2"]


async def test_suspend_releases_the_item_due_at_its_time(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    assert (await store.commit(commit(c, T0 + 10, outcome=Suspend(due_at=T0 + 5_000)))).ok
    assert await store.extend_leases("a", {c.item_id: c.lease_token}, T0 + 60_000) == {c.item_id}
    assert await store.next_due_at(APP) == T0 + 5_000
    assert await store.claim(APP, "b", 10, T0 + 4_999, LEASE) == []
    assert (await claim_one(store, "b", T0 + 5_000)).item_id == c.item_id


async def test_suspend_records_a_function_level_retry_with_its_error(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    error = {"name": "ValueError", "message": "bad"}
    assert (await store.commit(commit(c, T0 + 10, outcome=Suspend(due_at=T0 + 100, attempt=1, error=error)))).ok
    again = await claim_one(store, "a", T0 + 100)
    assert again.run.attempt == 1
    [failure] = (await run(store, c.run.run_id)).failures
    assert (failure.attempt, failure.error, failure.ended_at) == (1, error, T0 + 10)


async def test_finish_deletes_the_item_and_emits_the_run_events(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    assert (await store.commit(commit(c, T0 + 10, outcome=Finish(status="completed", output={"ok": 1})))).ok
    assert await store.next_due_at(APP) is None
    assert await store.extend_leases("a", {c.item_id: c.lease_token}, T0 + 60_000) == {c.item_id}
    done = await run(store, c.run.run_id)
    assert (done.status, done.output, done.ended_at) == ("completed", {"ok": 1}, T0 + 10)
    [finished] = await event_names(store, "inngest/function.finished")
    assert (finished.data["run_id"], finished.data["result"]) == (c.run.run_id, {"ok": 1})
    assert await event_names(store, "inngest/function.failed") == []


async def test_a_lost_lease_changes_nothing(store: Store) -> None:
    await store.ingest([event()], T0)
    old = await claim_one(store, "a", T0)
    new = await claim_one(store, "b", T0 + LEASE)
    sent = event("c/side-effect", at=T0 + LEASE)
    for outcome in (None, Suspend(due_at=T0), Finish(status="failed", error={"name": "E", "message": "m"})):
        result = await store.commit(
            commit(
                old,
                T0 + LEASE,
                steps=[step("k", "stale")],
                events=[sent],
                logs=[LogLine(ts=T0, level="INFO", message="stale")],
                outcome=outcome,
            )
        )
        assert (result.ok, result.reason) == (False, "lost")
    assert (await store.commit(commit(old, T0 + LEASE, steps=[step("only")]))).reason == "lost"  # the fast path
    stale = await run(store, old.run.run_id)
    assert (stale.status, stale.steps) == ("running", [])
    assert [f.error["name"] for f in stale.failures] == ["WorkerCrashedError"]  # the takeover's, only
    assert await store.get_events([sent.id]) == [] and await store.run_logs(old.run.run_id) == []
    assert await store.next_due_at(APP) == T0 + 2 * LEASE  # the new owner's lease, untouched
    assert (await store.commit(commit(new, T0 + LEASE + 1, outcome=Finish(status="completed")))).ok


async def test_extend_leases_moves_live_leases_and_reports_lost_ones(store: Store) -> None:
    await store.ingest([event(n=1), event(n=2), event(n=3)], T0)
    a, b, c = await store.claim(APP, "a", 10, T0, LEASE)
    await store.cancel_run(b.run.run_id, T0)
    await store.commit(commit(c, T0, outcome=Finish(status="completed")))
    tokens = {a.item_id: a.lease_token, b.item_id: b.lease_token, c.item_id: c.lease_token, "nope": "x"}
    assert await store.extend_leases("a", tokens, T0 + 10 * LEASE) == {b.item_id, c.item_id, "nope"}
    assert await store.claim(APP, "z", 10, T0 + 10 * LEASE - 1, LEASE) == []
    assert (await claim_one(store, "z", T0 + 10 * LEASE)).item_id == a.item_id
    assert await store.extend_leases("a", {a.item_id: a.lease_token}, T0 + 20 * LEASE) == {a.item_id}


async def test_release_gives_the_item_back_only_with_its_token(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "a", T0)
    await store.release(c.item_id, "not-the-token", T0)
    assert await store.claim(APP, "b", 10, T0 + 1, LEASE) == []
    await store.release(c.item_id, c.lease_token, T0 + 300)
    assert await store.next_due_at(APP) == T0 + 300
    assert not (await store.commit(commit(c, T0 + 1, steps=[step("k")]))).ok
    assert (await claim_one(store, "b", T0 + 300)).item_id == c.item_id


async def test_an_extension_skips_an_item_another_transaction_holds_instead_of_waiting(store: Store) -> None:
    """PostgreSQL: waiting for the row could deadlock with a group commit holding it (the detector
    takes a second to break it, and leases run out meanwhile)."""
    from outlast.storage.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        pytest.skip("row locks are PostgreSQL's")
    await store.ingest([event(n=1), event(n=2)], T0)
    a, b = await store.claim(APP, "a", 10, T0, LEASE)
    tokens = {a.item_id: a.lease_token, b.item_id: b.lease_token}
    with psycopg.connect(store.url) as other:
        other.execute("SELECT 1 FROM queue WHERE id = %s FOR UPDATE", (a.item_id,))
        lost = await asyncio.wait_for(store.extend_leases("a", tokens, T0 + 10 * LEASE), timeout=5)
        assert lost == set()  # held, but still ours
    [taken] = await store.claim(APP, "z", 10, T0 + LEASE, LEASE, **NO_CRASH_BACKOFF)
    assert taken.item_id == a.item_id  # a was skipped, so not extended; b was
