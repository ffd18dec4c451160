"""Retention on every backend: finished runs go with all their rows, nothing active or referenced
is ever deleted, and dedupe and idempotency keep their 24 h whatever the retention."""

from __future__ import annotations

from typing import Any

import pytest

import outlast
from outlast import Context, Event
from outlast.core.upkeep import PruneResult
from outlast.runtime.pruner import Pruner
from outlast.settings import Settings
from outlast.testing import TestEngine
from tests.conftest import PG_URL

DAY_MS = 86_400_000
TABLES = ("runs", "steps", "step_failures", "run_logs", "event_effects", "events", "waits", "wait_fields")


async def counts(t: TestEngine) -> dict[str, int]:
    def read(tx: Any) -> dict[str, int]:
        return {table: tx.one(f"SELECT COUNT(*) FROM {table}")[0] for table in TABLES}

    return await t.store._run(read)  # type: ignore[attr-defined]


async def prune_older_than(t: TestEngine, ms: int) -> PruneResult:
    return await Pruner(t.engine, "test").prune(t.now_ms() - ms, lease=False, pause_s=0)


def workflows(app: outlast.Outlast) -> None:
    failed_once: set[str] = set()

    @app.function(id="quick", trigger="t/quick")
    async def quick(ctx: Context) -> str:
        ctx.logger.info("starting %s", ctx.event.data["n"])

        def flaky() -> int:
            if ctx.run_id not in failed_once:
                failed_once.add(ctx.run_id)
                raise RuntimeError("once")
            return 1

        await ctx.step.run("flaky", flaky)
        await ctx.step.run("second", lambda: 2)
        return "done"

    @app.function(id="sleeper", trigger="t/sleep")
    async def sleeper(ctx: Context) -> str:
        await ctx.step.run("before", lambda: 1)
        await ctx.step.sleep("long", "30d")
        return "woke"

    @app.function(id="waiter", trigger="t/wait")
    async def waiter(ctx: Context) -> bool:
        got = await ctx.step.wait_for_event("w", event="t/resume", match="data.k", timeout="30d")
        return got is not None

    @app.function(id="batched", trigger="t/batch", batch=outlast.Batch(max_size=5, timeout="1d"))
    async def batched(ctx: Context) -> int:
        return len(ctx.events)


async def test_finished_runs_go_with_their_rows_and_active_ones_stay(app: outlast.Outlast, engine: TestEngine) -> None:
    workflows(app)
    async with engine as t:
        [quick_event] = await t.send(Event(name="t/quick", data={"n": 1}))
        active_events = await t.send(
            [
                Event(name="t/sleep"),
                Event(name="t/wait", data={"k": 7}),
                *[Event(name="t/batch", data={"i": i}) for i in range(3)],
            ]
        )
        await t.run_until_idle()
        t.advance("1m")  # the flaky step's retry (15 s and jitter)
        await t.run_until_idle()
        [quick_run] = t.runs(function_id="quick")
        assert quick_run.status == "completed" and quick_run.steps[0].failures
        before = await counts(t)
        assert before["run_logs"] == 1 and before["step_failures"] == 1 and before["event_effects"] == 2

        t.advance("2d")
        removed = await prune_older_than(t, DAY_MS)
        after = await counts(t)
        assert (removed.runs, removed.steps) == (1, 2)
        assert t.get_run(quick_run.id) is None
        assert (after["step_failures"], after["run_logs"]) == (0, 0)
        # quick's trigger and its function.finished event are gone; the active runs' events all stay
        assert [e.id for e in await t.store.get_events([quick_event, *active_events])] == active_events
        assert after["events"] == len(active_events) and removed.events == 2
        assert {r.function_id: r.status for r in t.runs()} == {
            "sleeper": "running",
            "waiter": "running",
            "batched": "queued",
        }
        assert after["event_effects"] == 2 and after["waits"] == 1 and after["steps"] == before["steps"] - 2

        await t.send(Event(name="t/resume", data={"k": 7}))
        t.advance("30d")
        await t.run_until_idle()
        assert {r.status for r in t.runs()} == {"completed"}
        assert (await prune_older_than(t, DAY_MS)).runs == 0  # they just ended: kept a day
        t.advance("2d")
        removed = await prune_older_than(t, DAY_MS)
        assert removed.runs == 3
        assert await counts(t) == dict.fromkeys(TABLES, 0)


async def test_dedupe_and_idempotency_keep_24_hours_whatever_the_retention(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="once-per-key", trigger="t/key", idempotency="event.data.k")
    async def once(ctx: Context) -> int:
        return int(ctx.event.data["k"])

    async with engine as t:
        await t.send(Event(name="t/key", id="sender-id-1", data={"k": 1}))
        await t.run_until_idle()
        t.advance("2m")
        assert (await prune_older_than(t, 60_000)).runs == 1  # a one-minute retention
        await t.send(Event(name="t/key", id="sender-id-1", data={"k": 2}))  # the same sender id
        await t.send(Event(name="t/key", id="sender-id-2", data={"k": 1}))  # the same idempotency key
        await t.run_until_idle()
        assert [(r.status, r.skip_reason) for r in t.runs()] == [("skipped", "idempotency")]
        t.advance("2m")
        await prune_older_than(t, 60_000)
        t.advance("24h")
        removed = await prune_older_than(t, 60_000)
        assert removed.dedupe_keys == 3  # two sender ids and one idempotency key: over now, and only now
        await t.send(Event(name="t/key", id="sender-id-1", data={"k": 1}))
        await t.run_until_idle()
        assert [r.status for r in t.runs()] == ["completed"]


async def test_one_process_at_a_time_holds_the_retention_lease(engine: TestEngine) -> None:
    async with engine as t:
        store, now = t.store, t.now_ms()
        assert await store.take_chore("retention", "a", now, 60_000)
        assert not await store.take_chore("retention", "b", now + 1_000, 60_000)
        assert await store.take_chore("retention", "a", now + 30_000, 60_000)  # renewed
        assert not await store.take_chore("retention", "b", now + 61_000, 60_000)
        assert await store.take_chore("retention", "b", now + 90_000, 60_000)  # a's lease ran out


async def test_a_wait_stored_after_its_index_entry_was_shrunk_is_found(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="waiter", trigger="t/wait")
    async def waiter(ctx: Context) -> Any:
        got = await ctx.step.wait_for_event("w", event="t/resume", match="data.k", timeout="1h")
        return None if got is None else got.data["k"]

    async with engine as t:
        await t.send(Event(name="t/wait", data={"k": 1}))
        await t.run_until_idle()
        await t.send(Event(name="t/resume", data={"k": 1}))
        await t.run_until_idle()
        assert await t.store.shrink_wait_fields() == 1
        assert await t.store.shrink_wait_fields() == 0
        await t.send(Event(name="t/wait", data={"k": 2}))
        await t.run_until_idle()
        assert await t.store.shrink_wait_fields() == 0  # a wait needs it again
        await t.send(Event(name="t/resume", data={"k": 2}))
        await t.run_until_idle()
        assert sorted(r.output for r in t.runs()) == [1, 2]


@pytest.mark.parametrize(("raw", "ms"), [("7d", 7 * DAY_MS), ("1m", 60_000), ("0", 0), ("12h30m", 45_000_000)])
def test_the_retention_setting_takes_a_duration(raw: str, ms: int) -> None:
    assert Settings.from_env({"OUTLAST_RETENTION": raw}).retention == ms


@pytest.mark.parametrize(("raw", "fragment"), [("7", "give a unit"), ("a week", "invalid duration")])
def test_a_retention_without_a_unit_is_refused(raw: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Settings.from_env({"OUTLAST_RETENTION": raw})


def test_retention_defaults_to_a_week() -> None:
    assert Settings.from_env({}).retention == 7 * DAY_MS


async def test_events_behind_long_lived_runs_are_still_pruned(
    app: outlast.Outlast, engine: TestEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import outlast.runtime.pruner

    monkeypatch.setattr(outlast.runtime.pruner, "PRUNE_BATCH", 2)  # the oldest batches hold only kept events

    @app.function(id="sleeper", trigger="t/sleep")
    async def sleeper(ctx: Context) -> None:
        await ctx.step.sleep("long", "30d")

    async with engine as t:
        kept = await t.send([Event(name="t/sleep") for _ in range(5)])
        await t.run_until_idle()
        gone = await t.send([Event(name="t/nobody-listens") for _ in range(3)])
        t.advance("2d")
        removed = await prune_older_than(t, DAY_MS)
        assert removed.events == 3 and not removed.more
        assert [e.id for e in await t.store.get_events(kept + gone)] == kept
        assert (await prune_older_than(t, DAY_MS)).events == 0  # the cursor wrapped around: nothing left


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_a_wait_committed_while_wait_fields_shrink_keeps_its_entry() -> None:
    """PostgreSQL: a shrink on another connection while a transaction storing a wait is still open
    must not drop that wait's index entry (which the open transaction found already there): the
    shrink waits for that transaction to end, then sees its wait."""
    import asyncio
    import threading

    from outlast.core.models import WaitSpec
    from outlast.storage.postgres import PostgresStore
    from outlast.storage.sql.waits import add_wait
    from tests.conftest import pg_database

    url = pg_database()
    store = PostgresStore(url)
    # a lock timeout of 10 s, not 200 ms: a busy machine must not end the shrink's wait early
    store._wait_fields_lock = tuple(s.replace("'200ms'", "'10s'") for s in store._wait_fields_lock)
    await store.open()
    spec = WaitSpec(
        kind="wait",
        event_name="t/e",
        expression=None,
        match_field="data.k",
        match_value="1",
        expires_at=10**13,
        step_key="w",
    )
    stored, release = threading.Event(), threading.Event()

    def open_wait(tx: Any) -> None:
        add_wait(tx, "run-2", spec, 1)
        stored.set()
        assert release.wait(30), "the test never let the transaction end"

    try:
        await store._run(lambda tx: add_wait(tx, "run-1", spec, 1))  # the entry exists
        await store._run(lambda tx: tx.run("DELETE FROM waits"))  # ... with no wait behind it
        storing = asyncio.ensure_future(store._run(open_wait))
        assert await asyncio.to_thread(stored.wait, 10)  # the transaction is open, its wait stored
        shrinking = asyncio.ensure_future(store.shrink_wait_fields())
        await asyncio.to_thread(wait_for_lock_wait, url, "wait_fields")
        release.set()
        await storing
        assert await shrinking == 0
        entries = await store._run(lambda tx: tx.all("SELECT event_name, match_field FROM wait_fields"))
        assert entries == [("t/e", "data.k")]
    finally:
        release.set()
        await store.close()


def wait_for_lock_wait(url: str, table: str) -> None:
    """Return once a session of this database waits for a lock on `table`."""
    import time

    import psycopg

    query = (
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while not conn.execute(query, (table,)).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, f"nothing waited for a lock on {table}"
            time.sleep(0.005)


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_postgres_reuses_the_queues_space_where_autovacuum_is_off() -> None:
    from outlast.storage.postgres import PostgresStore
    from tests.conftest import pg_database

    store = PostgresStore(pg_database())
    await store.open()

    async def churn() -> None:  # what claims and commits do to the queue, in bulk
        await store._run(
            lambda tx: tx.run(
                "INSERT INTO queue (id, app_id, kind, due_at)"
                " SELECT 'q' || g, 'a', 'run', 0 FROM generate_series(1, 20000) g"
            )
        )
        await store._run(lambda tx: tx.run("DELETE FROM queue"))

    async def size() -> int:
        return int(await store._run(lambda tx: tx.one("SELECT pg_relation_size('queue')")[0]))

    try:
        await churn()
        if not await store.vacuum(("queue",)):
            pytest.skip("this server vacuums by itself (autovacuum on)")
        first = await size()
        for _ in range(4):
            await churn()
            assert await store.vacuum(("queue",))
        assert await size() <= first * 1.25  # without the vacuums: about five times as large
    finally:
        await store.close()


@pytest.mark.skipif(not PG_URL, reason="OUTLAST_TEST_POSTGRES_URL is not set")
async def test_postgres_keeps_the_planners_statistics_where_autovacuum_is_off() -> None:
    """A claim loads the steps of a hundred runs by id. Never analyzed, `steps` is guessed to
    give half its rows for that, and is read whole; upkeep's ANALYZE makes it an index lookup."""
    from outlast.storage.postgres import PostgresStore
    from tests.conftest import pg_database

    store = PostgresStore(pg_database())
    await store.open()
    run_ids = [f"r{i}" for i in range(100)]
    memo_lookup = (
        "EXPLAIN SELECT run_id, key, output FROM steps"
        f" WHERE run_id IN ({', '.join('?' * len(run_ids))}) ORDER BY run_id, seq, key"
    )

    async def plan() -> str:
        return "\n".join(r[0] for r in await store._run(lambda tx: tx.all(memo_lookup, run_ids)))

    async def analyzed(table: str) -> bool:
        row = await store._run(
            lambda tx: tx.one("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = ?", (table,))
        )
        return bool(row and row[0])

    try:

        def fill(tx: Any) -> None:  # 50,000 runs of 4 steps each
            tx.run(
                "INSERT INTO steps (run_id, key, step_id, kind, status, attempts, seq, output)"
                " SELECT 'r' || (g / 4), 's' || (g % 4), 's', 'run', 'completed', 1, g % 4, repeat('x', 100)"
                " FROM generate_series(0, 199999) g"
            )
            # a session's counts reach the statistics others read when it is next idle, after up to
            # 10 s while nothing else happens (a busy session: every second); here, at once
            tx.all("SELECT pg_stat_force_next_flush()")

        await store._run(fill)
        if not await store.vacuum(("queue",)):
            pytest.skip("this server analyzes by itself (autovacuum on)")
        assert await analyzed("steps")
        assert not await analyzed("reruns")  # unchanged: not analyzed again and again
        assert "Seq Scan" not in await plan()
        assert "steps_pkey" in await plan()
    finally:
        await store.close()


async def test_stale_flow_control_keys_go_and_limits_still_hold(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="rated", trigger="t/rated", rate_limit=outlast.RateLimit(limit=1, period="1h", key="event.data.u"))
    async def rated(ctx: Context) -> None:
        return None

    @app.function(id="gathered", trigger="t/gather", batch=outlast.Batch(max_size=2, timeout="10m"))
    async def gathered(ctx: Context) -> int:
        return len(ctx.events)

    def rows(tx: Any) -> tuple[int, int]:
        return tx.one("SELECT COUNT(*) FROM gcra")[0], tx.one("SELECT COUNT(*) FROM gathering")[0]

    async with engine as t:
        await t.send([Event(name="t/rated", data={"u": u}) for u in ("a", "b")])
        await t.send(Event(name="t/gather"))  # a gathering whose run waits for one more event
        await t.run_until_idle()
        t.advance("3h")
        await t.send(Event(name="t/rated", data={"u": "a"}))  # a's key is busy for the next hour
        removed = await prune_older_than(t, 3_600_000 + 60_000)  # b's slot freed 2 h ago; a's is ahead
        assert removed.flow_keys == 1
        assert await t.store._run(rows) == (1, 1)  # type: ignore[attr-defined]
        await t.send([Event(name="t/rated", data={"u": "a"}), Event(name="t/rated", data={"u": "b"})])
        assert [r.skip_reason for r in t.runs(function_id="rated")].count("rate_limit") == 1  # a: still limited

        await t.run_until_idle()  # the batch's run started (its timeout passed)
        assert [r.output for r in t.runs(function_id="gathered")] == [1]
        t.advance("3h")
        removed = await prune_older_than(t, 60_000)  # the finished runs go too
        assert removed.flow_keys == 3 and await t.store._run(rows) == (0, 0)  # type: ignore[attr-defined]
        await t.send([Event(name="t/gather"), Event(name="t/gather")])  # a new gathering, as before
        await t.run_until_idle()
        assert [r.output for r in t.runs(function_id="gathered")] == [2]
