"""Flow control applied when `ingest` creates runs: rate limits and idempotency skip, singleton
skips or cancels, debounce and batching gather events into one run, throttle delays."""

from __future__ import annotations

import asyncio

from outlast.core.config import BatchRule, DebounceRule, RateLimitRule, SingletonRule, ThrottleRule
from outlast.core.models import Finish
from outlast.storage.base import Store
from tests.storage.contract import (
    APP,
    LEASE,
    T0,
    claim_one,
    commit,
    define,
    event,
    event_names,
    function,
    runs,
)

DAY = 86_400_000


async def statuses(store: Store) -> list[tuple[str, str | None]]:
    return [(r.status, r.skip_reason) for r in await runs(store)]


async def test_a_rate_limit_skips_runs_over_the_limit_per_key_until_the_period_frees_a_slot(store: Store) -> None:
    await define(
        store, function("limited", "c/rate", rate_limit=RateLimitRule(limit=2, period_ms=60_000, key="event.data.user"))
    )
    await store.ingest([event("c/rate", user="a") for _ in range(3)] + [event("c/rate", user="b")], T0)
    assert await statuses(store) == [("queued", None), ("queued", None), ("skipped", "rate_limit"), ("queued", None)]
    skipped = (await runs(store))[2]
    assert skipped.ended_at == T0
    await store.ingest([event("c/rate", at=T0 + 29_999, user="a")], T0 + 29_999)
    await store.ingest([event("c/rate", at=T0 + 30_000, user="a")], T0 + 30_000)  # one interval later
    assert [s for s, _ in await statuses(store)][4:] == ["skipped", "queued"]


async def test_an_idempotency_key_starts_one_run_per_key_for_a_day(store: Store) -> None:
    await define(store, function("once", "c/pay", idempotency="event.data.order"))
    await store.ingest([event("c/pay", order=1), event("c/pay", order=1), event("c/pay", order=2)], T0)
    assert await statuses(store) == [("queued", None), ("skipped", "idempotency"), ("queued", None)]
    await store.ingest([event("c/pay", at=T0 + DAY - 1, order=1)], T0 + DAY - 1)
    await store.ingest([event("c/pay", at=T0 + DAY, order=1)], T0 + DAY)
    assert [s for s, _ in await statuses(store)][3:] == ["skipped", "queued"]


async def test_a_singleton_in_skip_mode_skips_while_a_run_with_the_key_is_active(store: Store) -> None:
    await define(store, function("single", "c/one", singleton=SingletonRule(key="event.data.user", mode="skip")))
    await store.ingest([event("c/one", user="a"), event("c/one", user="a"), event("c/one", user="b")], T0)
    assert await statuses(store) == [("queued", None), ("skipped", "singleton"), ("queued", None)]
    first = (await runs(store))[0]
    claimed = next(c for c in await store.claim(APP, "w", 10, T0, LEASE) if c.run.run_id == first.id)
    await store.ingest([event("c/one", user="a")], T0)  # running still holds the key
    assert (await store.commit(commit(claimed, T0 + 1, outcome=Finish(status="completed")))).ok
    await store.ingest([event("c/one", at=T0 + 2, user="a")], T0 + 2)
    assert [s for s, _ in await statuses(store)][3:] == ["skipped", "queued"]


async def test_a_singleton_in_cancel_mode_cancels_the_active_run_and_starts_the_new_one(store: Store) -> None:
    await define(store, function("latest", "c/one", singleton=SingletonRule(key="event.data.user", mode="cancel")))
    await store.ingest([event("c/one", user="a")], T0)
    older = await claim_one(store, "w", T0)
    await store.ingest([event("c/one", at=T0 + 5, user="a")], T0 + 5)
    old, new = await runs(store)
    assert (old.status, old.error) == (
        "cancelled",
        {"name": "FunctionCancelled", "message": "replaced by a newer run (singleton)"},
    )
    assert new.status == "queued"
    assert not (await store.commit(commit(older, T0 + 6, outcome=Finish(status="completed")))).ok
    assert [e.data["run_id"] for e in await event_names(store, "inngest/function.cancelled")] == [old.id]


async def test_debounce_gathers_events_into_one_run_with_the_last_event_until_quiet(store: Store) -> None:
    await define(
        store,
        function("quiet", "c/typing", debounce=DebounceRule(period_ms=10_000, timeout_ms=25_000, key="event.data.doc")),
    )
    sent = []
    for at in (0, 5_000, 12_000, 20_000):  # each moves the run to at + 10 s, never past first + 25 s
        sent.append(event("c/typing", at=T0 + at, doc="d"))
        await store.ingest([sent[-1]], T0 + at)
        assert await store.next_due_at(APP) == T0 + min(at + 10_000, 25_000)
    await store.ingest([event("c/typing", at=T0 + 21_000, doc="other")], T0 + 21_000)
    gathered, _other = await runs(store)
    assert gathered.event_ids == [sent[-1].id] and gathered.status == "queued"
    assert await store.claim(APP, "w", 10, T0 + 24_999, LEASE) == []
    claimed = await claim_one(store, "w", T0 + 25_000)
    assert claimed.run.run_id == gathered.id and [e.id for e in claimed.run.events] == [sent[-1].id]
    for e in sent:
        assert [(x.run_id, x.effect) for x in await store.event_effects(e.id)] == [(gathered.id, "started")]
    await store.ingest([event("c/typing", at=T0 + 25_001, doc="d")], T0 + 25_001)  # leased: a new run starts
    assert len(await runs(store)) == 3


async def test_debounce_without_a_timeout_waits_for_a_quiet_period(store: Store) -> None:
    await define(store, function("quiet", "c/typing", debounce=DebounceRule(period_ms=10_000)))
    for at in range(0, 60_000, 9_000):
        await store.ingest([event("c/typing", at=T0 + at)], T0 + at)
    assert len(await runs(store)) == 1
    assert await store.next_due_at(APP) == T0 + 54_000 + 10_000


async def test_a_batch_starts_when_full_or_when_its_timeout_passes(store: Store) -> None:
    await define(store, function("batched", "c/item", batch=BatchRule(max_size=3, timeout_ms=10_000)))
    items = [event("c/item", n=i) for i in range(4)]
    await store.ingest(items[:2], T0)
    assert await store.claim(APP, "w", 10, T0, LEASE) == []  # two of three: waits for more
    await store.ingest(items[2:], T0 + 1)  # the third fills the batch; the fourth starts another
    [full] = await store.claim(APP, "w", 10, T0 + 1, 60_000)
    assert [e.id for e in full.run.events] == [e.id for e in items[:3]]
    assert await store.claim(APP, "w", 10, T0 + 10_000, LEASE) == []
    partial = await claim_one(store, "w", T0 + 10_001)  # the fourth's batch timed out
    assert [e.id for e in partial.run.events] == [items[3].id]
    assert [x.effect for x in await store.event_effects(items[1].id)] == ["started"]


async def test_throttle_delays_runs_beyond_limit_plus_burst_and_never_skips(store: Store) -> None:
    await define(store, function("throttled", "c/t", throttle=ThrottleRule(limit=1, period_ms=10_000, burst=1)))
    await store.ingest([event("c/t", n=i) for i in range(4)], T0)
    assert await statuses(store) == [("queued", None)] * 4
    claimed_at = {}
    for now in (T0, T0 + 9_999, T0 + 10_000, T0 + 19_999, T0 + 20_000):
        for c in await store.claim(APP, "w", 10, now, 60_000):
            claimed_at[c.run.events[0].data["n"]] = now - T0
    assert claimed_at == {0: 0, 1: 0, 2: 10_000, 3: 20_000}


async def test_concurrent_ingests_share_one_rate_limit_slot_and_one_batch(store: Store) -> None:
    """Events of one key sent at once, each alone (PostgreSQL: in parallel transactions), queue on
    the key's row: one run admitted, and one batch gathering them all."""
    await define(
        store, function("limited", "c/rate", rate_limit=RateLimitRule(limit=1, period_ms=DAY, key="event.data.user"))
    )
    await define(store, function("batched", "c/item", batch=BatchRule(max_size=100, timeout_ms=10_000)))
    await asyncio.gather(
        *(store.ingest([event("c/rate", user="a")], T0) for _ in range(20)),
        *(store.ingest([event("c/item", n=i)], T0) for i in range(20)),
    )
    all_runs = await runs(store)
    limited = [(r.status, r.skip_reason) for r in all_runs if r.function_id == "limited"]
    assert sorted(limited) == [("queued", None)] + [("skipped", "rate_limit")] * 19
    [batch] = [r for r in all_runs if r.function_id == "batched"]
    assert len(batch.event_ids) == 20
