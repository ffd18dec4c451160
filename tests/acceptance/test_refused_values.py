"""Values a database cannot hold: validation refuses what it can name, and a commit the database
still refuses fails the step or run at once, saying so, instead of being retried as an outage; an
output over the size limit fails its run and is not copied into the run's events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import outlast
from outlast import Context, Event, InvalidEventError
from outlast.core.models import Commit, CommitResult, EventFilter
from outlast.errors import StoreDataError
from outlast.storage.base import Store
from outlast.testing import TestEngine


async def test_an_event_time_beyond_year_9999_is_refused_naming_the_field(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    async with engine as t:
        with pytest.raises(InvalidEventError, match=r"event\[0\]\.ts: .*end of year 9999"):
            await t.send({"name": "t/x", "ts": 2**63})


async def test_a_log_line_with_a_nul_is_kept_on_every_backend(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="nul-log", trigger="t/nul-log")
    async def nul_log(ctx: Context) -> str:
        ctx.logger.warning("odd \x00 byte")
        return await ctx.step.run("after", lambda: "done")

    async with engine as t:
        await t.send(Event(name="t/nul-log"))
        await t.run_until_idle()
        [run] = t.runs()
        lines = await t.store.run_logs(run.id)
    assert run.status == "completed" and [line.message for line in lines] == ["odd \ufffd byte"]


async def test_a_flow_control_key_with_a_nul_is_kept_on_every_backend(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="keyed", trigger="t/keyed", concurrency=outlast.Concurrency(limit=1, key="event.data.k"))
    async def keyed(ctx: Context) -> str:
        return str(ctx.event.data["k"])

    async with engine as t:
        await t.send([Event(name="t/keyed", data={"k": "a\x00"}), Event(name="t/keyed", data={"k": "a"})])
        await t.run_until_idle()
        assert sorted(r.output for r in t.runs()) == ["a", "a\x00"]


def test_an_app_or_function_id_with_a_nul_is_refused() -> None:
    with pytest.raises(outlast.FunctionConfigError, match=r"app id 'a\\x00': must not contain a NUL"):
        outlast.Outlast("a\x00", database_url="memory://")
    app = outlast.Outlast("fine", database_url="memory://")
    with pytest.raises(outlast.FunctionConfigError, match="option 'id': must not contain a NUL"):

        @app.function(id="f\x00", trigger="t/x")
        async def f(ctx: Context) -> None:
            return None


class RefusingStore:
    """A real store that refuses commits carrying a given step output, as a database refuses a
    value it cannot hold (validation leaves nothing that reaches this on the real backends)."""

    def __init__(self, store: Store, refuse: Callable[[Commit], bool]) -> None:
        self._store, self._refuse, self.refused = store, refuse, 0

    async def commit(self, commit: Commit) -> CommitResult:
        if self._refuse(commit):
            self.refused += 1
            raise StoreDataError("value out of range for this column (test)")
        return await self._store.commit(commit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_refused_step_result_fails_the_step_at_once(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    @app.function(id="refused", trigger="t/refused", retries=3)
    async def refused(ctx: Context) -> Any:
        try:
            await ctx.step.run("too-big", lambda: "poison")
        except outlast.StepError as exc:
            return {"caught": exc.name}
        return "stored"

    store = RefusingStore(make_store(), lambda c: any(w.output == "poison" for w in c.steps))
    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/refused"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == {"caught": "StoreDataError"}
    # refused with the run's end it rode with, then alone; then recorded as the step's failure (the
    # next attempt meets it where the step was): not retried as an outage
    assert store.refused == 2
    [step] = run.steps
    assert step.status == "failed" and "refused" in (step.error or {})["message"]


async def test_a_refused_result_waiting_for_the_next_step_fails_where_it_was_and_the_next_body_waits(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    """The handler went on with the result before it was stored: when the database refuses it (as
    the next body is about to start), that body does not run; the attempt ends and the next one
    meets the step's failure where the step was."""
    after: list[str] = []

    @app.function(id="refused-then", trigger="t/refused-then", retries=3)
    async def refused_then(ctx: Context) -> Any:
        try:
            first = await ctx.step.run("first", lambda: "poison")
        except outlast.StepError as exc:
            first = exc.name
        return [first, await ctx.step.run("next", lambda: after.append(first) or "next")]

    store = RefusingStore(make_store(), lambda c: any(w.output == "poison" for w in c.steps))
    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/refused-then"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == ["StoreDataError", "next"]
    assert after == ["StoreDataError"]  # the next body ran once, never with the refused value
    assert store.refused == 2  # as it was about to be stored ahead of `next`, then alone
    first, _ = run.steps
    assert first.status == "failed" and "refused" in (first.error or {})["message"]


async def test_a_refused_outcome_fails_the_run_saying_why(
    app: outlast.Outlast, make_store: Callable[[], Store]
) -> None:
    @app.function(id="refused-output", trigger="t/refused-output", retries=3)
    async def refused_output(ctx: Context) -> str:
        return "poison"

    store = RefusingStore(make_store(), lambda c: getattr(c.outcome, "output", None) == "poison")
    async with TestEngine(app, store=store) as t:  # type: ignore[arg-type]
        await t.send(Event(name="t/refused-output"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and (run.error or {})["name"] == "StoreDataError" and store.refused == 1


async def test_a_function_output_over_the_limit_fails_the_run_and_is_not_copied_into_events(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="huge", trigger="t/huge")
    async def huge(ctx: Context) -> str:
        return "y" * (5 * 1024 * 1024)

    async with engine as t:
        await t.send(Event(name="t/huge"))
        await t.run_until_idle()
        [run] = t.runs()
        finished = await t.store.list_events(EventFilter(name="inngest/function.finished"))
    assert run.status == "failed" and run.output is None
    assert run.error is not None and run.error["name"] == "PayloadTooLargeError"
    assert "5242882 bytes, the limit is 4194304 bytes" in run.error["message"]
    assert [e.data.get("result") for e in finished] == [None]
