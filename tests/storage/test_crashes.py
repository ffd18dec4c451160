"""Attempts that stop their worker: a claim that finds an expired lease counts a crash; without
progress in between the count grows and at the bound the run fails clearly; suspects run one at
a time so a poison run cannot take the runs beside it down with it."""

from __future__ import annotations

from outlast.core.models import Claimed, Finish, Suspend
from outlast.storage.base import DEFAULT_MAX_CRASHES, Store
from tests.storage.contract import APP, LEASE, NO_CRASH_BACKOFF, T0, claim_one, commit, event, event_names, run, step

MESSAGE = "its attempts stopped their worker 3 times in a row without progress: killed, os._exit, out of memory?"


async def crash(store: Store, at: int, **options: float) -> list[Claimed]:
    """Claim at `at` and let the lease expire (the process that claimed died). Without backoff
    unless `options` say otherwise: the count is under test, not the wait."""
    return await store.claim(APP, "w", 10, at, LEASE, **{**NO_CRASH_BACKOFF, **options})


async def test_a_run_whose_attempts_keep_stopping_their_worker_fails_at_the_bound(store: Store) -> None:
    assert DEFAULT_MAX_CRASHES == 3
    await store.ingest([event()], T0)
    [first] = await crash(store, T0)
    for i in (1, 2):  # the 1st and 2nd crash are counted, the run is claimed again
        assert [c.run.run_id for c in await crash(store, T0 + i * LEASE)] == [first.run.run_id]
    assert await crash(store, T0 + 3 * LEASE) == []  # the 3rd: failed, not claimed
    failed = await run(store, first.run.run_id)
    assert (failed.status, failed.error, failed.ended_at) == (
        "failed",
        {"name": "WorkerCrashedError", "message": MESSAGE},
        T0 + 3 * LEASE,
    )
    assert await store.next_due_at(APP) is None
    [event_failed] = await event_names(store, "inngest/function.failed")
    assert event_failed.data["run_id"] == first.run.run_id
    assert not (await store.commit(commit(first, T0 + 3 * LEASE, steps=[step("late")]))).ok


async def test_a_crashed_attempt_waits_the_backoff_of_its_count_recorded_on_the_run(store: Store) -> None:
    """Crash n makes the run wait the n-th retry delay (15 s, 30 s, ...); a poison run still fails
    at the bound, only later."""
    await store.ingest([event()], T0)
    [first] = await store.claim(APP, "w", 10, T0, LEASE)
    now = T0 + LEASE
    for count, delay in ((1, 15_000), (2, 30_000)):
        assert await store.claim(APP, "w", 10, now, LEASE) == []  # the crash is seen: not run now
        assert await store.next_due_at(APP) == now + delay
        crashed = (await run(store, first.run.run_id)).failures[-1]
        assert crashed.error["name"] == "WorkerCrashedError" and crashed.error["retry_at"] == now + delay
        assert f"crash {count} of 3 in a row" in crashed.error["message"] and crashed.ended_at == now
        assert await store.claim(APP, "w", 10, now + delay - 1, LEASE) == []
        assert len(await store.claim(APP, "w", 10, now + delay, LEASE)) == 1  # and its worker dies again
        now += delay + LEASE
    assert await store.claim(APP, "w", 10, now, LEASE) == []
    failed = await run(store, first.run.run_id)
    assert (failed.status, failed.error, len(failed.failures)) == (
        "failed",
        {"name": "WorkerCrashedError", "message": MESSAGE},
        2,
    )


async def test_a_burst_of_kills_does_not_fail_a_healthy_run(store: Store) -> None:
    """Workers killed every second for 20 s (a deploy): the run crashes twice, not three times,
    and completes once the burst is over."""
    await store.ingest([event()], T0)
    for now in range(T0, T0 + 20_000, LEASE):
        await store.claim(APP, "w", 10, now, LEASE)  # whatever it takes dies with its worker
    [survivor] = await store.claim(APP, "w", 10, T0 + 47_000, LEASE)
    assert (await store.commit(commit(survivor, T0 + 47_001, outcome=Finish(status="completed")))).ok
    done = await run(store, survivor.run.run_id)
    assert done.status == "completed" and [f.error["retry_at"] for f in done.failures] == [T0 + 16_000, T0 + 47_000]


async def test_progress_between_crashes_starts_the_count_again(store: Store) -> None:
    await store.ingest([event()], T0)
    now = T0
    for i in range(6):  # each attempt commits one step, then its worker dies
        c = await claim_one(store, "w", now)
        assert (await store.commit(commit(c, now, steps=[step(f"k{i}")]))).ok
        now += LEASE
    assert (await run(store, c.run.run_id)).status == "running"


async def test_a_failed_step_attempt_is_progress(store: Store) -> None:
    await store.ingest([event()], T0)
    await crash(store, T0)
    error = {"name": "E", "message": "m"}
    for n in range(1, 6):  # each attempt records one more failure of step k, then its worker dies
        c = await claim_one(store, "w", T0 + n * LEASE)
        retrying = step("k", status="retrying", attempts=n, error=error, deadline=T0)
        assert (await store.commit(commit(c, T0 + n * LEASE, steps=[retrying]))).ok
    assert (await run(store, c.run.run_id)).status == "running"


async def test_a_suspend_clears_the_count(store: Store) -> None:
    await store.ingest([event()], T0)
    await crash(store, T0)
    await crash(store, T0 + LEASE)  # crash 1
    c = await claim_one(store, "w", T0 + 2 * LEASE)  # crash 2
    assert (await store.commit(commit(c, T0 + 2 * LEASE, outcome=Suspend(due_at=T0 + 2 * LEASE)))).ok
    await crash(store, T0 + 2 * LEASE)  # claimed from a released item: no crash
    await crash(store, T0 + 3 * LEASE)  # crash 1
    assert len(await crash(store, T0 + 4 * LEASE)) == 1  # crash 2: still claimed
    assert (await run(store, c.run.run_id)).status == "running"


async def test_released_and_finished_attempts_are_not_crashes(store: Store) -> None:
    await store.ingest([event()], T0)
    for i in range(5):
        c = await claim_one(store, "w", T0 + i)
        await store.release(c.item_id, c.lease_token, T0 + i + 1)
    c = await claim_one(store, "w", T0 + 5)
    assert (await store.commit(commit(c, T0 + 5, outcome=Finish(status="completed")))).ok
    assert (await run(store, c.run.run_id)).status == "completed"


async def test_the_bound_is_the_claims_and_zero_turns_it_off(store: Store) -> None:
    await store.ingest([event()], T0)
    for i in range(10):
        await crash(store, T0 + i * LEASE, max_crashes=0)
    assert await crash(store, T0 + 10 * LEASE, max_crashes=0) != []  # 10 crashes: still claimed
    assert await crash(store, T0 + 11 * LEASE, max_crashes=12) != []  # 11
    assert await crash(store, T0 + 12 * LEASE, max_crashes=12) == []  # 12: failed
    [failed] = await _all_runs(store)
    assert failed.status == "failed" and "12 times in a row" in failed.error["message"]


async def test_suspects_are_leased_one_at_a_time_beside_other_work(store: Store) -> None:
    await store.ingest([event(n=i) for i in range(3)], T0)
    await crash(store, T0)
    await crash(store, T0 + LEASE)  # each run: 1 crash
    await store.ingest([event(at=T0 + 2 * LEASE, n=9)], T0 + 2 * LEASE)
    claimed = await store.claim(APP, "w", 10, T0 + 2 * LEASE, LEASE, **NO_CRASH_BACKOFF)  # 2 crashes: three suspects
    assert sorted(c.run.events[0].data["n"] for c in claimed) == [0, 9]  # one suspect, and the fresh run
    suspect = next(c for c in claimed if c.run.events[0].data["n"] == 0)
    assert await store.claim(APP, "x", 10, T0 + 2 * LEASE + 1, LEASE) == []  # the others wait
    assert (await store.commit(commit(suspect, T0 + 2 * LEASE + 2, outcome=Finish(status="completed")))).ok
    [next_one] = await store.claim(APP, "x", 10, T0 + 2 * LEASE + 3, 10 * LEASE)
    assert next_one.run.events[0].data["n"] == 1
    assert (
        await store.commit(
            commit(next_one, T0 + 2 * LEASE + 4, steps=[step("k")], outcome=Suspend(due_at=T0 + 10 * LEASE))
        )
    ).ok
    [last] = await store.claim(APP, "x", 10, T0 + 2 * LEASE + 5, LEASE)  # a suspend ends suspicion
    assert last.run.events[0].data["n"] == 2


async def test_a_poison_run_fails_while_the_runs_it_took_down_complete(store: Store) -> None:
    """Every attempt of the poison run kills its worker at once; the other runs die with it
    while they share its worker, but once suspects run apart they finish."""
    await store.ingest([event(n=i, poison=i == 0) for i in range(4)], T0)
    now, finished = T0, set()
    for _ in range(20):
        claimed = await store.claim(APP, "w", 10, now, LEASE, **NO_CRASH_BACKOFF)
        if not any(c.run.events[0].data["poison"] for c in claimed):
            for c in claimed:  # the worker survives: the others complete
                assert (await store.commit(commit(c, now, outcome=Finish(status="completed")))).ok
                finished.add(c.run.events[0].data["n"])
        now += LEASE  # else the worker dies with every attempt it held
    statuses = {r.event_ids[0]: r.status for r in await _all_runs(store)}
    assert sorted(statuses.values()) == ["completed", "completed", "completed", "failed"]
    assert finished == {1, 2, 3}


async def _all_runs(store: Store) -> list:  # type: ignore[type-arg]
    from tests.storage.contract import runs

    return await runs(store)
