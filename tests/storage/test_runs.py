"""A run's record: cancellation and its trace, failure histories, the log bound, and what each
event did."""

from __future__ import annotations

from outlast.core.config import BatchRule
from outlast.core.models import EventFilter, Finish, LogLine, RunFilter, Suspend
from outlast.storage.base import MAX_LOGS_PER_RUN, Store
from tests.storage.contract import APP, T0, claim_one, commit, define, event, event_names, function, pending, run, step


async def test_cancel_marks_pending_and_retrying_steps_cancelled_and_keeps_finished_ones(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    rows = [
        step("done", "ok"),
        pending("nap", deadline=T0 + 60_000),
        step("flaky", status="retrying", error={"name": "E", "message": "m"}, deadline=T0 + 100),
    ]
    assert (await store.commit(commit(c, T0, steps=rows, outcome=Suspend(due_at=T0 + 100)))).ok
    assert await store.cancel_run(c.run.run_id, T0 + 50, reason="stop it")
    cancelled = await run(store, c.run.run_id)
    assert (cancelled.status, cancelled.error, cancelled.ended_at) == (
        "cancelled",
        {"name": "FunctionCancelled", "message": "stop it"},
        T0 + 50,
    )
    assert [(s.key, s.status, s.output, s.ended_at) for s in cancelled.steps] == [
        ("done", "completed", "ok", T0),
        ("nap", "cancelled", None, T0 + 50),
        ("flaky", "cancelled", None, T0 + 50),
    ]
    assert await store.next_due_at(APP) is None
    assert [e.name for e in await store.list_events(EventFilter())] == [
        "inngest/function.cancelled",
        "inngest/function.finished",
        "c/go",
    ]
    assert not await store.cancel_run(c.run.run_id, T0 + 60)
    assert not await store.cancel_run("no-such-run", T0 + 60)


async def test_each_failed_attempt_of_a_step_is_kept_in_order(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    for attempt in (1, 2):
        error = {"name": "E", "message": f"try {attempt}"}
        retry = step(
            "k",
            status="retrying",
            attempts=attempt,
            error=error,
            started_at=T0 + attempt,
            ended_at=T0 + attempt + 1,
            deadline=T0 + 10 * attempt,
        )
        assert (await store.commit(commit(c, T0 + attempt, steps=[retry]))).ok
    assert (await store.commit(commit(c, T0 + 5, steps=[step("k", "finally", attempts=3)]))).ok
    [k] = (await run(store, c.run.run_id)).steps
    assert (k.status, k.output, k.attempts) == ("completed", "finally", 3)
    assert [(f.attempt, f.error["message"], f.started_at, f.ended_at) for f in k.failures] == [
        (1, "try 1", T0 + 1, T0 + 2),
        (2, "try 2", T0 + 2, T0 + 3),
    ]


async def test_steps_are_read_in_first_write_order(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    for key in ("zeta", "alpha", "mid"):
        assert (await store.commit(commit(c, T0, steps=[step(key)]))).ok
    assert [s.key for s in (await run(store, c.run.run_id)).steps] == ["zeta", "alpha", "mid"]


async def test_a_runs_log_keeps_its_first_lines_up_to_the_bound(store: Store) -> None:
    await store.ingest([event()], T0)
    c = await claim_one(store, "w", T0)
    for chunk in range(3):
        lines = [LogLine(ts=T0 + i, level="INFO", message=f"{chunk}:{i}", step_id="k") for i in range(400)]
        assert (await store.commit(commit(c, T0, logs=lines))).ok
    kept = await store.run_logs(c.run.run_id)
    assert len(kept) == MAX_LOGS_PER_RUN
    assert (kept[0].message, kept[399].message, kept[400].message, kept[-1].message) == ("0:0", "0:399", "1:0", "2:199")
    assert kept[0].step_id == "k"


async def test_event_effects_name_every_run_a_batched_event_joined(store: Store) -> None:
    await define(store, function("batched", "c/item", batch=BatchRule(max_size=2, timeout_ms=1_000)))
    a, b = event("c/item"), event("c/item")
    await store.ingest([a], T0)
    await store.ingest([b], T0 + 1)
    [batch] = await store.list_runs(RunFilter(function_id="batched"))
    assert batch.event_ids == [a.id, b.id]
    for e in (a, b):
        assert [(x.run_id, x.effect, x.function_id, x.status) for x in await store.event_effects(e.id)] == [
            (batch.id, "started", "batched", "queued")
        ]
    assert await store.event_effects("unknown") == []


async def test_a_failed_run_emits_failed_and_finished_events(store: Store) -> None:
    await store.ingest([event(order=7)], T0)
    c = await claim_one(store, "w", T0)
    error = {"name": "Boom", "message": "no"}
    assert (await store.commit(commit(c, T0 + 1, outcome=Finish(status="failed", error=error)))).ok
    for name in ("inngest/function.failed", "inngest/function.finished"):
        [e] = await event_names(store, name)
        assert (e.data["run_id"], e.data["error"], e.data["event"]["data"]) == (c.run.run_id, error, {"order": 7})
