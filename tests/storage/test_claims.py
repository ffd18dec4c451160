"""Claims: which due items are leased (order, concurrency keys, scopes) and what a claim fires
(start and finish timeouts, cron ticks, queued runs starting, deadlines resolving)."""

from __future__ import annotations

from outlast.core.config import ConcurrencyRule, ThrottleRule, TimeoutRule
from outlast.core.cron import parse_schedule
from outlast.core.models import AppScope, Finish, Suspend
from outlast.storage.base import Store
from tests.storage.contract import (
    APP,
    APP_ID,
    FN,
    LEASE,
    NO_CRASH_BACKOFF,
    T0,
    claim_one,
    commit,
    define,
    event,
    event_names,
    function,
    pending,
    run,
    runs,
)


def users(claimed: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(c.run.events[0].data["user"] for c in claimed)


async def test_a_claim_leases_the_earliest_due_first_then_by_item_id(store: Store) -> None:
    await define(store, function("slow", "c/t", throttle=ThrottleRule(limit=1, period_ms=1_000, burst=1)))
    await store.ingest([event("c/t", n=i) for i in range(4)], T0)  # due T0, T0, T0+1s, T0+2s
    await store.ingest([event(n=9)], T0 + 500)  # `fn`, due T0+500
    order = []
    while claimed := await store.claim(APP, "w", 1, T0 + 5_000, 60_000):
        order.append(claimed[0].run.events[0].data["n"])
    assert order == [0, 1, 9, 2, 3]
    await store.ingest([event("c/t", at=T0 + 9_000, n=i) for i in range(5, 8)], T0 + 9_000)
    batch = await store.claim(APP, "w", 10, T0 + 60_000, 60_000)
    assert [c.item_id for c in batch] == sorted(c.item_id for c in batch)  # returned in item id order


async def test_a_concurrency_key_limits_live_leases_and_frees_its_slot_when_an_attempt_ends(store: Store) -> None:
    await define(store, function("keyed", "c/k", concurrency=(ConcurrencyRule(limit=2, key="event.data.user"),)))
    await store.ingest([event("c/k", user="a", n=i) for i in range(4)] + [event("c/k", user="b")], T0)
    first = await store.claim(APP, "w", 10, T0, LEASE)
    assert users(first) == ["a", "a", "b"]
    assert await store.claim(APP, "w", 10, T0 + 1, LEASE) == []
    done = next(c for c in first if c.run.events[0].data["user"] == "a")
    assert (await store.commit(commit(done, T0 + 2, outcome=Finish(status="completed")))).ok
    assert users(await store.claim(APP, "w", 10, T0 + 2, LEASE)) == ["a"]
    suspended = next(c for c in first if c.run.events[0].data["user"] == "a" and c.run.run_id != done.run.run_id)
    assert (await store.commit(commit(suspended, T0 + 3, outcome=Suspend(due_at=T0 + 100_000)))).ok
    assert users(await store.claim(APP, "w", 10, T0 + 3, LEASE)) == ["a"]  # the last of user a's
    assert await store.claim(APP, "w", 10, T0 + 4, LEASE) == []


async def test_an_expired_lease_frees_its_concurrency_slot(store: Store) -> None:
    await define(store, function("keyed", "c/k", concurrency=(ConcurrencyRule(limit=1, key="event.data.user"),)))
    await store.ingest([event("c/k", user="a", n=i) for i in range(2)], T0)
    [_first] = await store.claim(APP, "w", 10, T0, LEASE)
    assert await store.claim(APP, "w2", 10, T0 + LEASE - 1, LEASE) == []
    claimed = await store.claim(APP, "w2", 1, T0 + LEASE, LEASE)  # the lease expired: the slot is free
    assert [c.run.events[0].data["n"] for c in claimed] == [1]  # due since T0, before the expired one


async def test_two_concurrency_keys_must_both_have_a_free_slot(store: Store) -> None:
    rules = (ConcurrencyRule(limit=1, key="event.data.user"), ConcurrencyRule(limit=2, key="event.data.team"))
    await define(store, function("keyed", "c/k", concurrency=rules))
    pairs = [("a", "t1"), ("b", "t1"), ("c", "t1"), ("a", "t2"), ("d", "t2")]
    await store.ingest([event("c/k", user=u, team=t) for u, t in pairs], T0)
    claimed = await store.claim(APP, "w", 10, T0, LEASE)
    assert sorted((c.run.events[0].data["user"], c.run.events[0].data["team"]) for c in claimed) == [
        ("a", "t1"),
        ("b", "t1"),
        ("d", "t2"),
    ]  # c: team t1 full; a/t2: user a full


async def test_items_behind_a_full_key_are_still_claimed(store: Store) -> None:
    await define(store, function("keyed", "c/k", concurrency=(ConcurrencyRule(limit=1, key="event.data.user"),)))
    await store.ingest([event("c/k", user="busy", n=i) for i in range(20)], T0)
    await store.ingest([event("c/k", at=T0 + 1, user="free")], T0 + 1)
    assert users(await store.claim(APP, "w", 1, T0 + 1, LEASE)) == ["busy"]
    assert users(await store.claim(APP, "w", 1, T0 + 1, LEASE)) == ["free"]


async def test_a_scope_claims_only_its_functions_runs_plus_orphans_when_known_is_given(store: Store) -> None:
    await define(store, function("mine", "c/x"), function("theirs", "c/x"), function("gone", "c/x"))
    await store.ingest([event("c/x")], T0)
    served = AppScope(app_id=APP_ID, functions=("mine",))
    assert [c.run.function_id for c in await store.claim(served, "w", 10, T0, LEASE)] == ["mine"]
    with_orphans = AppScope(app_id=APP_ID, functions=("nothing",), known=("fn", "mine", "theirs"))
    assert [c.run.function_id for c in await store.claim(with_orphans, "w", 10, T0, LEASE)] == ["gone"]
    other_app = AppScope(app_id="another")
    assert await store.claim(other_app, "w", 10, T0, LEASE) == []
    assert [c.run.function_id for c in await store.claim(APP, "w", 10, T0, LEASE)] == ["theirs"]


async def test_a_claim_starts_queued_runs(store: Store) -> None:
    await store.ingest([event()], T0)
    [queued] = await runs(store)
    assert (queued.status, queued.started_at) == ("queued", None)
    c = await claim_one(store, "w", T0 + 7)
    assert (c.run.status, c.run.started_at) == ("running", T0 + 7)
    stored = await run(store, c.run.run_id)
    assert (stored.status, stored.started_at) == ("running", T0 + 7)
    again = await claim_one(store, "w", T0 + 7 + LEASE)  # a second attempt keeps its start time
    assert again.run.started_at == T0 + 7


async def test_a_start_timeout_cancels_a_run_still_queued_when_a_claim_fires_it(store: Store) -> None:
    await define(
        store,
        function(
            "prompt", "c/p", timeouts=TimeoutRule(start_ms=5_000), concurrency=(ConcurrencyRule(limit=1, key="'one'"),)
        ),
    )
    await store.ingest([event("c/p", n=1), event("c/p", n=2)], T0)
    [started] = await store.claim(APP, "w", 10, T0, 60_000)  # the other waits for the key
    assert await store.claim(APP, "w", 10, T0 + 4_999, 60_000) == []
    assert await store.claim(APP, "w", 10, T0 + 5_000, 60_000) == []  # fires: nothing to return
    by_n = {r.event_ids[0]: r for r in await runs(store)}
    statuses = sorted((r.status, (r.error or {}).get("message")) for r in by_n.values())
    assert statuses == [("cancelled", "start timeout reached"), ("running", None)]
    assert (await run(store, started.run.run_id)).status == "running"
    assert len(await event_names(store, "inngest/function.cancelled")) == 1


async def test_a_finish_timeout_counts_from_the_start_and_cancels_a_run_not_ended(store: Store) -> None:
    await define(store, function("bounded", "c/b", timeouts=TimeoutRule(finish_ms=5_000)))
    await store.ingest([event("c/b")], T0)
    assert await store.claim(APP, "w", 10, T0 + 1_000, LEASE) != []  # starts at T0+1s: ends by T0+6s
    c = (await runs(store))[0]
    claimed = await store.claim(APP, "w", 10, T0 + 3_000, LEASE, **NO_CRASH_BACKOFF)  # the first lease expired
    assert (await store.commit(commit(claimed[0], T0 + 3_000, outcome=Suspend(due_at=T0 + 60_000)))).ok
    assert await store.claim(APP, "w", 10, T0 + 5_999, LEASE) == []
    assert await store.claim(APP, "w", 10, T0 + 6_000, LEASE) == []
    cancelled = await run(store, c.id)
    assert (cancelled.status, cancelled.error) == (
        "cancelled",
        {"name": "FunctionCancelled", "message": "finish timeout reached"},
    )
    assert await store.next_due_at(APP) is None


async def test_a_run_that_ends_in_time_is_not_cancelled_by_its_timeout(store: Store) -> None:
    await define(store, function("bounded", "c/b", timeouts=TimeoutRule(start_ms=1_000, finish_ms=5_000)))
    await store.ingest([event("c/b")], T0)
    [c] = await store.claim(APP, "w", 10, T0, 60_000)
    assert await store.claim(APP, "w", 10, T0 + 1_000, LEASE) == []  # start timeout: the run started
    assert (await store.commit(commit(c, T0 + 1_000, outcome=Finish(status="completed", output=1)))).ok
    assert await store.next_due_at(APP) is None  # the finish timeout went with the run
    assert (await run(store, c.run.run_id)).status == "completed"


async def test_a_cron_item_starts_one_run_per_tick_and_one_catch_up_after_downtime(store: Store) -> None:
    await define(store, function("tick", "cron:*/5 * * * *"))
    schedule = parse_schedule("*/5 * * * *")
    first = schedule.next_after(T0)
    assert await store.next_due_at(APP) == first
    assert await store.claim(APP, "w", 10, first - 1, LEASE) == []
    assert await store.claim(APP, "w", 10, first, LEASE) == []  # fires; the run it starts is due now
    assert [(r.function_id, r.status) for r in await runs(store)] == [("tick", "queued")]
    assert await store.next_due_at(APP) == first  # the new run
    ticked = await claim_one(store, "w", first)
    assert ticked.run.function_id == "tick"
    assert (await store.commit(commit(ticked, first, outcome=Finish(status="completed")))).ok
    later = first + 3 * 3_600_000 + 1  # three hours of downtime: 36 ticks missed
    await store.claim(APP, "w", 10, later, LEASE)
    ticks = await event_names(store, "inngest/scheduled.timer")
    assert [e.ts for e in ticks] == [later, first]  # exactly one catch-up
    assert len([r for r in await runs(store) if r.function_id == "tick"]) == 2
    catch_up = await claim_one(store, "w", later + 1)
    assert (await store.commit(commit(catch_up, later + 1, outcome=Finish(status="completed")))).ok
    assert await store.next_due_at(APP) == schedule.next_after(later)  # the cron item's next tick


async def test_a_claim_resolves_the_deadlines_that_passed_and_only_those(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    rows = [
        pending("short", deadline=T0 + 1_000),
        pending("long", deadline=T0 + 9_000),
        pending("wait", kind="wait_for_event", status="waiting", deadline=T0 + 1_000),
    ]
    assert (await store.commit(commit(c, T0, steps=rows, outcome=Suspend(due_at=T0 + 1_000)))).ok
    memo = (await claim_one(store, "w", T0 + 1_000)).run.memo
    assert {k: (m.status, m.ended_at) for k, m in memo.items()} == {
        "short": ("completed", T0 + 1_000),
        "long": ("sleeping", None),
        "wait": ("completed", T0 + 1_000),
    }


async def test_the_basic_function_is_defined(store: Store) -> None:
    assert (await store.load_functions())[1] == [FN]
