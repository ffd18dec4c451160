"""Per-step policy: StepOptions' own retries, wall-clock timeout per attempt and backoff, and
Backoff as a function option."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import outlast
from outlast import Backoff, Context, Event, StepError, StepOptions
from outlast.testing import TestEngine


async def test_a_step_has_its_own_retry_count(app: outlast.Outlast, engine: TestEngine) -> None:
    calls: list[str] = []

    @app.function(id="fragile", trigger="t/go", retries=4)
    async def fragile(ctx: Context) -> str:
        def flaky() -> None:
            calls.append("x")
            raise ValueError("down")

        try:
            await ctx.step.run(StepOptions("call", retries=1, backoff=Backoff(initial="1s", jitter=False)), flaky)
        except StepError as exc:
            return exc.message
        return "ok"

    async with engine as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        t.advance("1s")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.output == "down" and len(calls) == 2 and run.steps[0].attempts == 2
    backoff = {"initial_ms": 1000, "factor": 2.0, "max_ms": 600_000, "jitter": False}
    assert run.steps[0].detail == {"policy": {"retries": 1, "timeout_ms": None, "backoff": backoff}}


async def test_a_step_backs_off_by_its_own_backoff(app: outlast.Outlast, engine: TestEngine) -> None:
    calls: list[int] = []

    @app.function(id="backoff", trigger="t/go")
    async def backoff(ctx: Context) -> int:
        def third_time_lucky() -> int:
            calls.append(t.now_ms())
            if len(calls) < 3:
                raise ValueError("not yet")
            return len(calls)

        policy = StepOptions("lucky", backoff=Backoff(initial="10s", factor=3, max="1m", jitter=False))
        return int(await ctx.step.run(policy, third_time_lucky))

    async with engine as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        t.advance("9s")
        await t.run_until_idle()
        assert len(calls) == 1
        t.advance("1s")
        await t.run_until_idle()
        t.advance("30s")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.output == 3 and [calls[1] - calls[0], calls[2] - calls[1]] == [10_000, 30_000]


async def test_backoff_is_a_function_option(app: outlast.Outlast, engine: TestEngine) -> None:
    calls: list[int] = []

    @app.function(id="fn-backoff", trigger="t/go", backoff=Backoff(initial="2s", factor=1, jitter=False))
    async def fn_backoff(ctx: Context) -> int:
        def twice() -> int:
            calls.append(t.now_ms())
            if len(calls) < 2:
                raise ValueError("once")
            return 2

        return int(await ctx.step.run("twice", twice))

    async with engine as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        t.advance("2s")
        await t.run_until_idle()
        [run] = t.runs()
    assert run.output == 2 and calls[1] - calls[0] == 2_000


async def test_an_async_attempt_over_its_timeout_is_cancelled_and_retried(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    attempts: list[str] = []

    @app.function(id="slow", trigger="t/go")
    async def slow(ctx: Context) -> str:
        async def body() -> str:
            attempts.append("started")
            if len(attempts) == 1:
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    attempts.append("cancelled")
                    raise
            return "fast"

        return str(await ctx.step.run(StepOptions("slow", timeout="100ms", backoff=Backoff(jitter=False)), body))

    async with engine as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        [run] = t.runs()
        assert run.status == "running"
        failure = run.steps[0]
        t.advance("1s")
        await t.run_until_idle()
        [run] = t.runs()
    assert attempts == ["started", "cancelled", "started"]
    assert failure.status == "retrying" and failure.error is not None and failure.error["name"] == "StepTimeoutError"
    assert run.output == "fast"


async def test_a_plain_body_over_its_timeout_has_its_late_result_discarded(
    app: outlast.Outlast, engine: TestEngine
) -> None:
    release, finished = threading.Event(), threading.Event()
    attempts: list[int] = []

    @app.function(id="stuck", trigger="t/go")
    async def stuck(ctx: Context) -> str:
        def body() -> str:
            attempts.append(1)
            if len(attempts) == 1:
                release.wait(30)
                finished.set()
                return "late"
            return "retry"

        return str(await ctx.step.run(StepOptions("stuck", timeout="100ms", backoff=Backoff(jitter=False)), body))

    async with engine as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        t.advance("1s")
        await t.run_until_idle()
        release.set()
        await asyncio.get_running_loop().run_in_executor(None, finished.wait, 30)
        [run] = t.runs()
    assert run.output == "retry" and run.steps[0].output == "retry"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (StepOptions("s", retries=21), "retries: expected an integer from 0 to 20"),
        (StepOptions("s", retries=-1), "retries: expected an integer from 0 to 20"),
        (StepOptions("s", timeout=0), "timeout: must be more than 0"),
        (StepOptions("s", backoff=Backoff(factor=0)), "backoff: factor"),
        (StepOptions("s", backoff="1s"), "backoff: expected outlast.Backoff"),  # type: ignore[arg-type]
    ],
)
async def test_bad_step_options_fail_the_run_naming_the_option(
    app: outlast.Outlast, options: StepOptions, fragment: str
) -> None:
    @app.function(id="bad-options", trigger="t/go")
    async def bad(ctx: Context) -> None:
        await ctx.step.run(options, lambda: 1)

    async with TestEngine(app) as t:
        await t.send(Event(name="t/go"))
        await t.run_until_idle()
        [run] = t.runs()
    assert run.status == "failed" and run.error is not None
    assert "step 's'" in run.error["message"] and fragment in run.error["message"]


@pytest.mark.parametrize(
    ("backoff", "fragment"),
    [
        (Backoff(initial=0), "initial: must be more than 0"),
        (Backoff(initial="1m", max="1s"), "max: must be at least initial"),
        (Backoff(jitter="yes"), "jitter"),  # type: ignore[arg-type]
        ("1s", "expected Backoff"),
    ],
)
def test_a_bad_function_backoff_is_a_config_error(backoff: Any, fragment: str) -> None:
    app = outlast.Outlast("bad-backoff", database_url="memory://")
    with pytest.raises(outlast.FunctionConfigError, match="option 'backoff'") as caught:
        app.function(id="f", trigger="t/x", backoff=backoff)
    assert fragment in str(caught.value)
