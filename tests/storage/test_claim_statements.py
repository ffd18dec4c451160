"""What a claim and a run's end cost in statements: a claim counts concurrency keys (under the
claim lock, on PostgreSQL) only when an item with a key is due first, and on PostgreSQL a claim
of a new run is two statements (the second also reads the scope's next due time, which spares
the worker a read of its own before it idles), an empty claim two and a run's end two (issue 28:
round trips are most of an idle run's latency there); an idle run's transactions there take seven,
four and five round trips. And claimers at once, in several stores, keep a key's limit while
they take the app's other runs."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest

from outlast.core.config import ConcurrencyRule
from outlast.core.models import Claimed, Finish
from outlast.core.planner import Planner
from outlast.core.registry import Registry
from outlast.storage.base import Store
from tests.storage.contract import APP, LEASE, T0, claim_one, commit, define, event, event_names, function, run, step
from tests.storage.statements import recorded, round_trips

KEYED = function("keyed", "c/k", concurrency=(ConcurrencyRule(limit=2, key="event.data.user"),))


def counts_keys(statements: list[str]) -> bool:
    """Whether the claim read the leases of each key (which it does under the claim lock)."""
    return any("COUNT(*)" in s for s in statements)


async def test_a_claim_of_runs_without_keys_counts_no_keys(
    store: Store, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await define(store, KEYED)
    await store.ingest([event(n=1)], T0)  # the app's basic function: no concurrency key
    with recorded(monkeypatch) as statements:
        c = await claim_one(store, "w", T0)
    assert c.run.status == "running" and c.run.events[0].data == {"n": 1}
    assert not counts_keys(statements)
    with recorded(monkeypatch) as empty:
        assert await store.claim(APP, "w", 10, T0, LEASE) == []
    assert not counts_keys(empty)
    if backend == "postgres":
        # lease; start and read, with the next due time; nothing due: lease, next due time
        assert (len(statements), len(empty)) == (2, 2)


async def test_a_claim_counts_keys_when_an_item_with_a_key_is_due_first(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    await define(store, KEYED)
    await store.ingest([event("c/k", user="a", n=i) for i in range(3)], T0)
    await store.ingest([event(n=9)], T0 + 1)
    with recorded(monkeypatch) as statements:
        first = await store.claim(APP, "w", 1, T0 + 1, LEASE)
    assert counts_keys(statements)
    assert [c.run.events[0].data["n"] for c in first] == [0]
    claimed = await store.claim(APP, "w", 10, T0 + 1, LEASE)
    assert sorted(c.run.events[0].data["n"] for c in claimed) == [1, 9]  # user a's limit is 2


async def test_claimers_in_several_stores_at_once_keep_key_limits_and_take_the_runs_without_keys(
    store: Store, backend: str, make_store: Callable[[], Store]
) -> None:
    if backend == "memory":
        pytest.skip("a memory store is one process's own")
    await define(store, KEYED)
    keyed = [event("c/k", user=u, n=i) for i in range(8) for u in "abc"]
    plain = [event(n=100 + i) for i in range(40)]
    await store.ingest([e for pair in zip(keyed, plain, strict=False) for e in pair] + plain[len(keyed) :], T0)
    stores = [store, *[await _opened(make_store()) for _ in range(3)]]
    claimed: list[Claimed] = []
    try:
        while batch := await asyncio.gather(
            *(s.claim(APP, f"w{i}-{j}", 3, T0, 60_000) for i, s in enumerate(stores) for j in range(3))
        ):
            if not any(batch):
                break
            claimed += [c for found in batch for c in found]
    finally:
        for s in stores[1:]:
            await s.close()
    users = Counter(c.run.events[0].data.get("user") for c in claimed)
    assert users == {"a": 2, "b": 2, "c": 2, None: 40}
    assert len({c.item_id for c in claimed}) == len(claimed)


async def _opened(s: Store) -> Store:
    s.bind(Planner())
    await s.open()
    s.planner.registry = Registry((await s.load_functions())[1])  # type: ignore[attr-defined]
    return s


async def test_a_run_ends_in_two_statements_on_postgresql_with_its_finished_event(
    store: Store, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.ingest([event(n=1)], T0)
    c = await claim_one(store, "w", T0)
    done = commit(c, T0 + 5, outcome=Finish(status="completed", output={"ok": 1}, trigger_events=c.run.events))
    with recorded(monkeypatch) as statements:
        assert (await store.commit(done)).ok
    assert not (await store.commit(done)).ok  # the item is gone: a second end has no lease
    ended = await run(store, c.run.run_id)
    assert (ended.status, ended.output, ended.ended_at) == ("completed", {"ok": 1}, T0 + 5)
    [finished] = await event_names(store, "inngest/function.finished")
    assert finished.data["run_id"] == c.run.run_id and finished.data["result"] == {"ok": 1}
    assert await store.claim(APP, "w", 10, T0 + 10 * LEASE, LEASE) == []
    if backend == "postgres":
        assert len(statements) == 2  # the end, its defers and ingest's reads; the event


async def test_an_idle_runs_transactions_take_seven_four_and_five_round_trips_on_postgresql(
    store: Store, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send that claims for an idle worker, a checkpoint, a run's end (`bench.latency`'s run;
    its app has a function with a concurrency key, so claims look at keys first)."""
    if backend != "postgres":
        pytest.skip("round trips are PostgreSQL's cost")
    await define(store, KEYED)
    with round_trips(monkeypatch) as send:
        _ids, claims = await store.ingest_and_claim([event(n=1)], T0, scope=APP, owner="w", limit=4, lease_ms=LEASE)
    [c] = claims
    assert (c.run.status, c.run.events[0].data, claims.next_due_at) == ("running", {"n": 1}, T0 + LEASE)
    with round_trips(monkeypatch) as checkpoint:
        assert (await store.commit(commit(c, T0 + 1, steps=[step("a", 1)]))).ok
    done = commit(c, T0 + 2, outcome=Finish(status="completed", output=2, trigger_events=c.run.events))
    with round_trips(monkeypatch) as end:
        assert (await store.commit(done)).ok
    assert (await run(store, c.run.run_id)).status == "completed"
    # BEGIN; the event with ingest's reads; the run with its item; the lease; the start and read
    # with the next due time; the transaction's id with NOTIFY; COMMIT
    assert len(send) == 7, send
    assert len(checkpoint) == 4, checkpoint  # BEGIN; the step; the transaction's id; COMMIT
    assert len(end) == 5, end  # BEGIN; the end; its event; the id with NOTIFY; COMMIT


async def test_a_claim_reads_its_transaction_id_with_its_runs_and_is_resolved_when_its_commit_gets_no_answer(
    store: Store, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lease wrote (a data-modifying WITH, answered as a SELECT), so the COMMIT must be
    resolvable; the id comes with the runs it read, not in a statement of its own."""
    if backend != "postgres":
        pytest.skip("PostgreSQL's COMMIT resolution")
    from tests.storage.test_postgres_commit import _drop_commit_answer

    await define(store, KEYED)
    await store.ingest([event(n=1)], T0)
    dropped = _drop_commit_answer(monkeypatch)
    with round_trips(monkeypatch) as sent:
        [c] = await store.claim(APP, "w", 4, T0, LEASE)
    assert dropped and c.run.events[0].data == {"n": 1}
    assert len(sent) == 4, sent  # BEGIN; the lease; the runs with the id; COMMIT
    assert await store.claim(APP, "other", 4, T0, LEASE) == []  # leased once, by the claim answered
    assert (await store.commit(commit(c, T0 + 1, steps=[step("a", 1)]))).ok  # with that claim's lease
