"""Checkpoints and run ends that group commit runs together (`storage/sql/batches.py`) store the
same rows and give each commit the same answer as when they run one by one, on every backend."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from outlast.core.models import Claimed, Commit, CommitResult, Finish, Suspend
from outlast.core.planner import wait_spec
from outlast.storage.base import Store
from outlast.storage.memory import MemoryStore
from outlast.storage.sql import commit as sql_commit
from outlast.storage.sql.batches import CheckpointRequest, FinishRequest, run_together
from outlast.storage.sql.store import SqlStore
from tests.storage.contract import APP, LEASE, T0, claim_one, commit, define, event, event_names, function, pending
from tests.storage.contract import run as get_run
from tests.storage.contract import step as step_write


async def claimed_runs(store: Store, n: int) -> list[Claimed]:
    await store.ingest([event(i=i) for i in range(n)], T0)
    taken = await store.claim(APP, "w", n, T0, LEASE)
    assert len(taken) == n
    return taken


def stale(c: Claimed) -> Claimed:
    """The claim as an owner whose lease was taken over holds it."""
    return Claimed(item_id=c.item_id, lease_token="taken-over", run=c.run)


async def together(store: Store, requests: list[Any]) -> dict[int, Any]:
    """The requests run by `run_together` in one transaction, as a group commit does."""
    assert isinstance(store, SqlStore)
    result: dict[int, Any] = await store._run(lambda tx: run_together(tx, requests))
    return result


async def one_group(store: Store, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Make the calls while every writer thread of the store is held, so that they are all waiting
    when the writers go on, and the first writer free takes them as one group."""
    gate, entered = threading.Event(), threading.Semaphore(0)

    def hold(_tx: Any) -> None:
        entered.release()
        gate.wait(10)

    assert isinstance(store, SqlStore)
    holders = []
    for _ in range(getattr(store, "pool_size", 1)):
        holders.append(asyncio.ensure_future(store._run(hold)))
        assert await asyncio.to_thread(entered.acquire, True, 10)
    tasks = [asyncio.ensure_future(call()) for call in calls]
    await asyncio.sleep(0)  # each task submits its request before its first real wait
    gate.set()
    await asyncio.gather(*holders)
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_checkpoints_run_together_write_each_held_step_and_tell_the_rest_apart(store: Store) -> None:
    a, b, c, d = await claimed_runs(store, 4)
    assert (await store.commit(commit(d, T0, steps=[step_write("s", output="first")]))).ok
    requests = [
        CheckpointRequest(commit(a, T0 + 1, steps=[step_write("s", output={"n": 1})])),
        CheckpointRequest(commit(stale(b), T0 + 1, steps=[step_write("s", output=2)])),
        CheckpointRequest(commit(c, T0 + 1, steps=[pending("nap", deadline=T0 + 50)])),
        CheckpointRequest(commit(d, T0 + 1, steps=[step_write("s", output="second")])),  # already final
    ]
    results = await together(store, requests)
    assert results == {
        0: CommitResult(ok=True),
        1: CommitResult(ok=False, reason="lost"),
        2: CommitResult(ok=True),
        3: CommitResult(ok=True),
    }
    assert {s.key: s.output for s in (await get_run(store, a.run.run_id)).steps} == {"s": {"n": 1}}
    assert (await get_run(store, b.run.run_id)).steps == []
    assert (await get_run(store, d.run.run_id)).steps[0].output == "first"
    [nap] = (await get_run(store, c.run.run_id)).steps
    assert (nap.status, nap.deadline) == ("sleeping", T0 + 50)
    assert (await store.commit(commit(c, T0 + 2, outcome=Suspend(due_at=T0 + 50)))).ok
    woken = await claim_one(store, "w", T0 + 50)  # the pending deadline was seen: the nap ended
    assert (woken.run.run_id, woken.run.memo["nap"].status) == (c.run.run_id, "completed")


async def test_run_ends_run_together_end_each_held_run_and_ingest_its_events(store: Store) -> None:
    await define(store, function("on-finished", trigger="inngest/function.finished"))
    parent_event = event(order="p")
    await store.ingest([parent_event], T0)
    parent = await claim_one(store, "w", T0)
    a, b, c = await claimed_runs(store, 3)
    invoke = wait_spec(
        kind="invoke",
        event_name="inngest/function.finished",
        trigger=parent_event.to_dict(),
        expression=f"async.data.run_id == '{a.run.run_id}'",
        expires_at=T0 + 60_000,
        step_key="call",
    )
    call = pending("call", kind="invoke", status="invoking", deadline=T0 + 60_000)
    assert (
        await store.commit(commit(parent, T0, steps=[call], waits=[invoke], outcome=Suspend(due_at=T0 + 60_000)))
    ).ok
    requests = [
        FinishRequest(commit(a, T0 + 5, outcome=Finish(status="completed", output={"v": 1})), store.planner),
        FinishRequest(commit(stale(b), T0 + 5, outcome=Finish(status="completed")), store.planner),
        FinishRequest(
            commit(c, T0 + 6, outcome=Finish(status="failed", error={"name": "E", "message": "m"})), store.planner
        ),
    ]
    results = await together(store, requests)
    assert results == {0: CommitResult(ok=True), 1: CommitResult(ok=False, reason="lost"), 2: CommitResult(ok=True)}
    ended = {r: await get_run(store, r) for r in (a.run.run_id, b.run.run_id, c.run.run_id)}
    assert [(x.status, x.output, x.error, x.ended_at) for x in ended.values()] == [
        ("completed", {"v": 1}, None, T0 + 5),
        ("running", None, None, None),
        ("failed", None, {"name": "E", "message": "m"}, T0 + 6),
    ]
    finished = await event_names(store, "inngest/function.finished")
    assert sorted(e.data["run_id"] for e in finished) == sorted([a.run.run_id, c.run.run_id])
    assert [e.data["run_id"] for e in await event_names(store, "inngest/function.failed")] == [c.run.run_id]
    due = await store.claim(APP, "w", 10, T0 + 6, LEASE)
    handled = sorted(x.run.events[0].data["run_id"] for x in due if x.run.function_id == "on-finished")
    assert handled == sorted([a.run.run_id, c.run.run_id])  # a handler's run per finished event
    [resumed] = [x for x in due if x.run.function_id == "fn"]  # the invoke of a's run resolved: its parent
    assert (resumed.run.run_id, resumed.run.memo["call"].output) == (parent.run.run_id, {"v": 1})


async def test_a_group_of_commits_is_answered_as_one_by_one_and_a_bad_one_fails_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(store, MemoryStore):
        pytest.skip("memory:// runs each request on its own (no group commit)")
    batched: list[int] = []
    batch = sql_commit.checkpoints

    def checkpoints(tx: Any, commits: list[Commit]) -> Any:
        batched.append(len(commits))
        return batch(tx, commits)

    monkeypatch.setattr(sql_commit, "checkpoints", checkpoints)
    runs = await claimed_runs(store, 6)
    bad = "\ud800"  # cannot be stored as JSON: the batch fails, and the group runs again one by one
    calls: list[Callable[[], Awaitable[Any]]] = [
        *(lambda r=r: store.commit(commit(r, T0 + 1, steps=[step_write("s", output=r.run.run_id)])) for r in runs[:3]),
        lambda: store.commit(commit(runs[3], T0 + 1, steps=[step_write("s", output=bad)])),
        *(lambda r=r: store.commit(commit(r, T0 + 1, outcome=Finish(status="completed", output=1))) for r in runs[4:]),
    ]
    results = await one_group(store, calls)
    assert results[:3] == [CommitResult(ok=True)] * 3 and results[4:] == [CommitResult(ok=True)] * 2
    assert isinstance(results[3], Exception)
    assert batched == [4]  # tried together; then, isolated, each on its own
    for r in runs[:3]:
        assert [s.output for s in (await get_run(store, r.run.run_id)).steps] == [r.run.run_id]
    assert (await get_run(store, runs[3].run.run_id)).steps == []
    assert [(await get_run(store, r.run.run_id)).status for r in runs[4:]] == ["completed"] * 2


async def test_publish_checkpoints_run_together_send_each_message_once_and_only_with_its_step(
    store: Store,
) -> None:
    from outlast.core.realtime import MessageRecord

    def said(run: Claimed, text: str) -> list[MessageRecord]:
        return [MessageRecord(channel="news", topic="t", data=text, ts=T0, run_id=run.run.run_id)]

    a, b, c = await claimed_runs(store, 3)
    assert (await store.commit(commit(c, T0, steps=[step_write("p")], messages=said(c, "c first")))).ok
    publishes = [
        commit(a, T0 + 1, steps=[step_write("p")], messages=said(a, "a")),
        commit(stale(b), T0 + 1, steps=[step_write("p")], messages=said(b, "b lost its lease")),
        commit(c, T0 + 1, steps=[step_write("p")], messages=said(c, "c again")),  # already sent
    ]
    assert all(sql_commit.is_checkpoint(p) for p in publishes)
    results = await together(store, [CheckpointRequest(p) for p in publishes])
    kept = await store.read_messages(channels=["news"], after_id=0)
    assert [r.ok for r in results.values()] == [True, False, True]
    assert [m.data for m in kept] == ["c first", "a"]


async def test_checkpoints_run_together_store_every_value_as_it_was_given(store: Store) -> None:
    """Quotes, backslashes, escapes and characters beyond ASCII in every text column, through the
    batched statement (on PostgreSQL its rows travel as one JSON document)."""
    odd = ['a "quoted" \\ back\\slash', "line\nbreak\ttab \u2028 é ü 日本 🙂", '{"k": "\\u0041"}', "", "null"]
    runs = await claimed_runs(store, len(odd))
    requests = [
        CheckpointRequest(commit(r, T0 + 1, steps=[step_write(f"s{text}", output={"text": text, "n": 2**62})]))
        for r, text in zip(runs, odd, strict=True)
    ]
    results = await together(store, requests)
    assert list(results.values()) == [CommitResult(ok=True)] * len(odd)
    for r, text in zip(runs, odd, strict=True):
        [s] = (await get_run(store, r.run.run_id)).steps
        assert (s.id, s.output, s.attempts, s.started_at) == (f"s{text}", {"text": text, "n": 2**62}, 1, T0)


async def test_postgres_rows_as_tables_split_into_queries_over_a_size(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PgTx.tables` sends its rows as jsonb, whose values PostgreSQL limits in size: past
    `_JSON_CHUNK` bytes the rows go in a further query, and none is lost or changed."""
    from outlast.storage import postgres

    if not isinstance(store, postgres.PostgresStore):
        pytest.skip("PostgreSQL's way of passing rows")
    monkeypatch.setattr(postgres, "_JSON_CHUNK", 100)
    rows = [(f"row {i} 'x' \"y\" \\ é", i * 2**40, None if i % 2 else i) for i in range(12)]

    def select(tx: Any) -> tuple[int, list[Any]]:
        found, queries = [], 0
        for table, params in tx.tables(rows, ("text", "bigint", "integer")):
            queries += 1
            found += tx.all(f"WITH v (a, b, c) AS ({table}) SELECT a, b, c FROM v", params)
        return queries, found

    queries, found = await store._run(select)  # type: ignore[attr-defined]
    assert queries > 1
    assert sorted(found) == sorted(rows)
    assert await store._run(lambda tx: list(tx.tables([], ("text",)))) == []  # type: ignore[attr-defined]


class Recording:
    """A transaction that notes each statement (and each `stored` look-up) it is asked to run."""

    def __init__(self, tx: Any) -> None:
        self.tx, self.seen = tx, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.tx, name)
        if name not in ("all", "one", "run", "many", "insert_many", "stored"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.seen.append(f"{name} {args[0]} {args[1] if name == 'stored' else ''}")
            return attr(*args, **kwargs)

        return call


async def test_run_ends_together_ingest_their_events_in_few_statements(store: Store) -> None:
    """Twenty run ends ingest twenty `function.finished` events: their names' fields are read in one
    statement (one name, though more events than `PREFETCH_MAX`), and their ids, made in this
    transaction, are not looked for among the stored events."""
    runs = await claimed_runs(store, 20)
    requests = [FinishRequest(commit(r, T0 + 5, outcome=Finish(status="completed")), store.planner) for r in runs]
    recording: list[Recording] = []

    def run(tx: Any) -> dict[int, Any]:
        recording.append(Recording(tx))
        return run_together(recording[0], requests)

    assert isinstance(store, SqlStore)
    results = await store._run(run)
    assert list(results.values()) == [CommitResult(ok=True)] * 20
    seen = recording[0].seen
    assert [s for s in seen if s.startswith("stored") and "events" in s] == []
    assert len([s for s in seen if "wait_fields" in s or "lookback_fields" in s]) == 1
    assert len(await event_names(store, "inngest/function.finished")) == 20


async def test_postgres_batched_run_ends_look_runs_up_by_key_in_a_large_table(store: Store) -> None:
    """The planner is told how many rows a batch holds (`PgTx.tables`): ending three runs among
    thousands reads them through the primary key, not the whole table."""
    from outlast.storage import postgres

    if not isinstance(store, postgres.PostgresStore):
        pytest.skip("PostgreSQL's plans")

    def plan(tx: Any) -> str:
        tx.run(
            "INSERT INTO runs (id, app_id, function_id, status, event_ids, first_event_id, created_at)"
            " SELECT 'r' || g, 'a', 'f', 'completed', '[]', 'e', 0 FROM generate_series(1, 5000) AS g"
        )
        tx.script(b"ANALYZE runs")
        rows = [(f"r{i}", "completed", "null", None, T0) for i in (1, 2, 3)]
        [(table, params)] = list(tx.tables(rows, sql_commit._END_TYPES))
        return "\n".join(line for (line,) in tx.all("EXPLAIN " + sql_commit._END_RUNS_SQL.format(table=table), params))

    found = await store._run(plan)  # type: ignore[attr-defined]
    assert "Index Scan using runs_pkey" in found and "Seq Scan on runs" not in found, found


async def test_postgres_batched_run_ends_read_defer_rows_by_index_among_many_steps(store: Store) -> None:
    """A batch of ending runs reads their defer rows (`defers.defer_rows`) from the partial index
    of defer rows (migration 18), not by reading every step stored: here a table that VACUUM has
    counted and ANALYZE has not seen yet, as in a busy new database."""
    import psycopg
    import psycopg.sql

    from outlast.storage import postgres
    from outlast.storage.sql import defers

    if not isinstance(store, postgres.PostgresStore):
        pytest.skip("PostgreSQL's plans")
    await store._run(  # type: ignore[attr-defined]
        lambda tx: tx.run(
            "INSERT INTO steps (run_id, key, step_id, kind, status, attempts, seq)"
            " SELECT 'r' || (g / 3), 'k' || g, 's', 'run', 'completed', 1, g FROM generate_series(1, 12000) AS g"
        )
    )
    with psycopg.connect(store.url, autocommit=True) as conn:
        conn.execute("VACUUM steps")

    def plan(tx: Any) -> str:
        [(table, params)] = list(tx.tables([(f"r{i}",) for i in (1, 2, 3)], ("text",)))
        found = [line for (line,) in tx.all("EXPLAIN " + defers._BATCH_SQL.format(table=table), params)]
        # and the generic plan of the prepared statement that psycopg makes of it after a few runs
        numbered = postgres.to_pyformat(defers._BATCH_SQL.format(table=table)).replace(b"%s", b"$1", 1)
        tx.script(b"SET LOCAL plan_cache_mode = force_generic_plan; PREPARE p AS " + numbered.replace(b"%s", b"$2", 1))
        arguments = psycopg.sql.SQL(", ").join(map(psycopg.sql.Literal, params))
        found += [line for (line,) in tx.cur.execute(psycopg.sql.SQL("EXPLAIN EXECUTE p({})").format(arguments))]
        tx.script(b"DEALLOCATE p")
        return "\n".join(found)

    found = await store._run(plan)  # type: ignore[attr-defined]
    assert "Seq Scan on steps" not in found, found
