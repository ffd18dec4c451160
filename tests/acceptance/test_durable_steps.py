"""Steps are memoized, retried with backoff, and survive sleeps — on every backend."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import pytest

import outlast
from outlast import Context, Event, NonRetriableError, RetryAfterError, StepError
from outlast.testing import TestEngine


async def test_a_committed_step_never_runs_again_when_the_run_resumes(app: outlast.Outlast, engine: TestEngine) -> None:
    calls: Counter[str] = Counter()

    def work(name: str) -> str:
        calls[name] += 1
        return name.upper()

    @app.function(id="memo", trigger="t/memo")
    async def memo(ctx: Context) -> list[str]:
        a = await ctx.step.run("a", work, "a")
        await ctx.step.sleep("nap", "1h")
        b = await ctx.step.run("b", work, "b")
        if ctx.attempt == 0:
            raise RuntimeError("fail once outside any step")  # the function replays from its memo
        return [a, b]

    async with engine as t:
        await t.send(Event(name="t/memo"))
        await t.run_until_idle()
        t.advance("1h")
        await t.run_until_idle()
        t.advance("20s")
        await t.run_until_idle()
        [run] = t.runs(function_id="memo")
    assert run.status == "completed"
    assert run.output == ["A", "B"]
    assert calls == {"a": 1, "b": 1}
    assert [s.id for s in run.steps] == ["a", "nap", "b"]


async def test_a_step_the_handler_gives_up_on_still_commits_and_never_runs_again(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    calls: Counter[str] = Counter()
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> str:
        calls["slow"] += 1
        started.set()
        await release.wait()
        return "late"

    @app.function(id="gives-up", trigger="t/gives-up")
    async def gives_up(ctx: Context) -> str:
        pending = asyncio.ensure_future(ctx.step.run("slow", slow))
        await started.wait()
        pending.cancel()  # the handler stops waiting; the step goes on and is committed
        release.set()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        return "done"

    async with engine as t:
        await t.send(Event(name="t/gives-up"))
        await t.run_until_idle()
        [run] = t.runs(function_id="gives-up")
    assert (run.status, run.output) == ("completed", "done")
    assert [(s.id, s.status, s.output) for s in run.steps] == [("slow", "completed", "late")]
    assert calls == {"slow": 1}


async def test_a_failing_step_is_retried_on_the_backoff_schedule(app: outlast.Outlast, engine: TestEngine) -> None:
    attempts: list[int] = []

    @app.function(id="flaky", trigger="t/flaky")
    async def flaky(ctx: Context) -> str:
        def call() -> str:
            attempts.append(t.now_ms())
            if len(attempts) < 3:
                raise ConnectionError("upstream down")
            return "ok"

        return str(await ctx.step.run("call", call))

    async with engine as t:
        start = t.now_ms()
        await t.send(Event(name="t/flaky"))
        await t.run_until_idle()
        assert len(attempts) == 1
        t.advance("14s")  # first retry is due 15 s (+ up to 10 % jitter) after the failure
        await t.run_until_idle()
        assert len(attempts) == 1
        t.advance("2500ms")
        await t.run_until_idle()
        assert len(attempts) == 2
        t.advance("29s")  # second retry: 30 s (+ jitter)
        await t.run_until_idle()
        assert len(attempts) == 2
        t.advance("5s")
        await t.run_until_idle()
        [run] = t.runs(function_id="flaky")
    assert len(attempts) == 3
    assert 15_000 <= attempts[1] - start <= 16_500
    assert 30_000 <= attempts[2] - attempts[1] <= 34_500
    assert run.status == "completed" and run.output == "ok"
    assert run.steps[0].attempts == 3 and run.steps[0].status == "completed"


async def test_step_error_after_retries_can_be_caught_and_a_fallback_runs(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="fallback", trigger="t/fb", retries=1)
    async def fallback(ctx: Context) -> str:
        def broken() -> None:
            raise ValueError("always broken")

        try:
            await ctx.step.run("primary", broken)
        except StepError as exc:
            assert exc.step_id == "primary" and exc.name == "ValueError"
            reason = exc.message
            return str(await ctx.step.run("fallback", lambda: f"fallback after {reason}"))
        return "unreachable"

    async with engine as t:
        await t.send(Event(name="t/fb"))
        for _ in range(3):
            await t.run_until_idle()
            t.advance("1m")
        [run] = t.runs(function_id="fallback")
    assert run.status == "completed" and run.output == "fallback after always broken"
    primary = run.steps[0]
    assert (primary.status, primary.attempts, primary.error and primary.error["name"]) == ("failed", 2, "ValueError")


async def test_an_uncaught_step_error_fails_the_run_and_emits_failure_events(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    seen: list[dict[str, object]] = []

    def on_failure(ctx: Context) -> None:
        seen.append(ctx.event.data)

    @app.function(id="doomed", trigger="t/doomed", retries=0, on_failure=on_failure)
    async def doomed(ctx: Context) -> None:
        await ctx.step.run("boom", _raise, NonRetriableError("card declined"))

    @app.function(id="audit", trigger="inngest/function.finished")
    async def audit(ctx: Context) -> str:
        return str(ctx.event.data["_inngest"]["status"])  # type: ignore[index]

    async with engine as t:
        await t.send(Event(name="t/doomed", data={"order": 7}))
        await t.run_until_idle()
        [run] = t.runs(function_id="doomed")
        [failure_run] = t.runs(function_id="doomed-failure")
        [audit_run] = t.runs(function_id="audit")
    assert run.status == "failed" and run.error is not None and "card declined" in run.error["message"]
    assert failure_run.status == "completed"
    assert seen[0]["function_id"] == "test-app-doomed" and seen[0]["run_id"] == run.id
    assert seen[0]["event"]["data"] == {"order": 7}  # type: ignore[index]
    assert audit_run.output == "failed"


def _raise(exc: Exception) -> None:
    raise exc


async def test_non_retriable_error_in_a_step_fails_it_at_once(app: outlast.Outlast, engine: TestEngine) -> None:
    calls = Counter[str]()

    @app.function(id="nonretry", trigger="t/nr")
    async def nonretry(ctx: Context) -> None:
        def body() -> None:
            calls["body"] += 1
            raise NonRetriableError("bad input")

        await ctx.step.run("validate", body)

    async with engine as t:
        await t.send(Event(name="t/nr"))
        await t.run_until_idle()
        [run] = t.runs()
    assert calls["body"] == 1 and run.status == "failed"
    assert run.steps[0].status == "failed" and run.steps[0].attempts == 1


async def test_retry_after_error_sets_the_next_attempt_time(app: outlast.Outlast, engine: TestEngine) -> None:
    times: list[int] = []

    @app.function(id="ratelimited", trigger="t/ra")
    async def ratelimited(ctx: Context) -> int:
        def body() -> int:
            times.append(t.now_ms())
            if len(times) == 1:
                raise RetryAfterError("slow down", "2m")
            return len(times)

        return int(await ctx.step.run("call", body))

    async with engine as t:
        await t.send(Event(name="t/ra"))
        await t.run_until_idle()
        t.advance("119s")
        await t.run_until_idle()
        assert len(times) == 1
        t.advance("1s")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and times[1] - times[0] == 120_000


@pytest.mark.parametrize("when", ["soon", -5, float("nan")])
async def test_a_retry_after_error_with_an_unusable_time_fails_its_step_at_once_naming_it(
    app: outlast.Outlast, engine: TestEngine, when: object
) -> None:
    attempts: list[int] = []

    @app.function(id="bad-ra", trigger="t/bad-ra", retries=3)
    async def bad_ra(ctx: Context) -> str:
        def body() -> str:
            attempts.append(ctx.attempt)
            raise RetryAfterError("slow down", when)  # type: ignore[arg-type]

        try:
            return str(await ctx.step.run("call", body))
        except StepError as exc:
            return f"caught: {exc.message}"

    async with engine as t:
        await t.send(Event(name="t/bad-ra"))
        await t.run_until_idle()
        [run] = t.runs()
    assert attempts == [0]
    [step] = run.steps
    assert step.id == "call" and step.status == "failed" and step.attempts == 1
    assert step.error is not None and step.error["name"] == "RetryAfterError"
    assert repr(when) in step.error["message"] and "retry_after" in step.error["message"]
    assert run.status == "completed" and run.output == f"caught: {step.error['message']}"


async def test_a_function_error_is_retried_by_replay_until_attempts_are_spent(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    seen_attempts: list[int] = []

    @app.function(id="fnerr", trigger="t/fnerr", retries=2)
    async def fnerr(ctx: Context) -> None:
        seen_attempts.append(ctx.attempt)
        raise RuntimeError("always")

    async with engine as t:
        await t.send(Event(name="t/fnerr"))
        for _ in range(4):
            await t.run_until_idle()
            t.advance("2m")
        [run] = t.runs(function_id="fnerr")
    assert seen_attempts == [0, 1, 2]
    assert run.status == "failed" and run.error is not None and run.error["name"] == "RuntimeError"


async def test_a_seven_day_sleep_completes_in_virtual_time(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="weekly", trigger="t/week")
    async def weekly(ctx: Context) -> str:
        await ctx.step.sleep("a-week", "7d")
        return "rested"

    async with engine as t:
        await t.send(Event(name="t/week"))
        await t.run_until_idle()
        t.advance("6d23h59m")
        await t.run_until_idle()
        assert t.runs()[0].status == "running"
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == "rested"
    assert run.steps[0].kind == "sleep" and run.steps[0].status == "completed"


async def test_plain_def_handlers_and_step_bodies_work(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="sync", trigger="t/sync")
    def sync_handler(ctx: outlast.SyncContext) -> int:
        x = ctx.step.run("double", lambda v: v * 2, ctx.event.data["v"])
        ctx.step.sleep("pause", "10s")
        return int(ctx.step.run("inc", lambda: x + 1))

    async with engine as t:
        await t.send(Event(name="t/sync", data={"v": 20}))
        await t.run_until_idle()
        t.advance("10s")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "completed" and run.output == 41


async def test_repeated_step_ids_get_numbered_keys(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="loop", trigger="t/loop")
    async def loop(ctx: Context) -> list[int]:
        return [await ctx.step.run("item", lambda i=i: i) for i in range(3)]

    async with engine as t:
        await t.send(Event(name="t/loop"))
        await t.run_until_idle()
        [run] = t.runs()
    import hashlib

    assert run.output == [0, 1, 2]
    assert [s.key for s in run.steps] == [hashlib.sha1(k.encode()).hexdigest() for k in ("item", "item:1", "item:2")]


async def test_an_explicit_step_id_equal_to_a_repeats_key_runs_its_own_body(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    """`s`, `s` (keyed `s:1`), then `s:1`: as inngest-js does, the third takes the next free key
    (`s:1:1`), so its body runs and it is never answered from the second `s`'s memo."""
    calls: Counter[str] = Counter()

    def work(name: str) -> str:
        calls[name] += 1
        return name

    @app.function(id="collide", trigger="t/collide")
    async def collide(ctx: Context) -> list[str]:
        first = [await ctx.step.run("s", work, "first s"), await ctx.step.run("s", work, "second s")]
        await ctx.step.sleep("nap", "1m")  # the rest replays from the memo
        return [*first, await ctx.step.run("s:1", work, "explicit s:1"), await ctx.step.run("s", work, "third s")]

    async with engine as t:
        await t.send(Event(name="t/collide"))
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
    import hashlib

    assert run.output == ["first s", "second s", "explicit s:1", "third s"]
    assert calls == {"first s": 1, "second s": 1, "explicit s:1": 1, "third s": 1}
    raw = ("s", "s:1", "nap", "s:1:1", "s:2")
    assert [s.key for s in run.steps] == [hashlib.sha1(k.encode()).hexdigest() for k in raw]


async def test_the_logger_does_not_repeat_lines_on_replay(
    app: outlast.Outlast, engine: TestEngine, caplog: pytest.LogCaptureFixture
) -> None:
    @app.function(id="logs", trigger="t/logs")
    async def logs(ctx: Context) -> None:
        ctx.logger.info("before step")
        await ctx.step.run("a", lambda: 1)
        await ctx.step.sleep("s", "1s")
        ctx.logger.info("after sleep")

    caplog.set_level("INFO", logger="outlast.run")
    async with engine as t:
        await t.send(Event(name="t/logs"))
        await t.run_until_idle()
        t.advance("1s")
        await t.run_until_idle()
    lines = [r.getMessage() for r in caplog.records if r.name == "outlast.run"]
    assert lines == ["before step", "after sleep"]


async def test_logged_lines_are_kept_with_the_run_once_even_across_retries(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    failures = iter([True, False])

    def flaky() -> str:
        if next(failures):
            raise ConnectionError("try again")
        return "ok"

    @app.function(id="logs-kept", trigger="t/logs-kept")
    async def logs_kept(ctx: Context) -> None:
        await ctx.step.run("first", lambda: 1)
        ctx.logger.info("between %s and %s", "first", "flaky")
        await ctx.step.run("flaky", flaky)
        ctx.logger.warning("done")

    async with engine as t:
        await t.send(Event(name="t/logs-kept"))
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs()
        assert run.status == "completed"
        lines = await t.store.run_logs(run.id)
    assert [(line.level, line.message) for line in lines] == [("INFO", "between first and flaky"), ("WARNING", "done")]


async def test_a_bare_except_around_a_sleep_cannot_finish_the_run_early(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    @app.function(id="swallow", trigger="t/swallow")
    async def swallow(ctx: Context) -> str:
        try:
            await ctx.step.sleep("nap", "1h")
        except BaseException:  # the trial's code: it must not end the run
            return "swallowed"
        return "slept"

    async with engine as t:
        await t.send(Event(name="t/swallow"))
        await t.run_until_idle()
        [run] = t.runs()
        assert run.status == "running" and run.steps[0].status == "sleeping"
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs()
    assert (run.status, run.output) == ("completed", "slept")
