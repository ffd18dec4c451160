"""Functions of the Python interop app for the cases the official inngest-py function suite
checks against Inngest's dev server: error codes, request counts, a converging step, a parallel
step that disappears, function-level attempts counted afresh after progress.

Each call of a handler records `request:<function>` in OUTLAST_TEST_EFFECTS, so a test can count
the requests a run cost.
"""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from typing import Any

import inngest

CALLS: Counter[str] = Counter()


def functions(client: inngest.Inngest, effect: Any) -> list[inngest.Function[Any]]:
    @client.create_function(fn_id="coded", trigger=inngest.TriggerEvent(event="py/coded"), retries=0)
    async def coded(ctx: inngest.Context) -> None:
        case = ctx.event.data["case"]
        if case == "non_retriable":
            raise inngest.NonRetriableError("no retries for this")
        if case == "unserializable":
            await ctx.step.run("unserializable", lambda: object())  # type: ignore[arg-type,return-value]
        if case == "nested":

            async def outer() -> None:
                await ctx.step.run("inner", lambda: None)

            await ctx.step.run("outer", outer)

    @client.create_function(fn_id="nap-child", trigger=inngest.TriggerEvent(event="py/never"), retries=0)
    async def nap_child(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        return "done"

    @client.create_function(fn_id="fan", trigger=inngest.TriggerEvent(event="py/fan"), retries=0)
    async def fan(ctx: inngest.Context) -> list[Any]:
        effect("request:fan")
        results = await ctx.group.parallel(
            (
                lambda: ctx.step.invoke("invoke", function=nap_child),
                lambda: ctx.step.run("1a", lambda: 1),
                lambda: ctx.step.run("1b", lambda: 2),
                lambda: ctx.step.send_event("send", events=inngest.Event(name="py/noop")),
            )
        )
        await ctx.step.run("after", lambda: effect("after:fan"))
        return list(results[:3])

    @client.create_function(fn_id="converge", trigger=inngest.TriggerEvent(event="py/converge"), retries=0)
    async def converge(ctx: inngest.Context) -> str:
        effect("request:converge")
        await ctx.group.parallel(
            (lambda: ctx.step.run("1.1", lambda: "1.1"), lambda: ctx.step.run("1.2", lambda: "1.2"))
        )
        await ctx.step.run("converge", lambda: None)
        return "done"

    @client.create_function(fn_id="disappears", trigger=inngest.TriggerEvent(event="py/disappears"), retries=0)
    async def disappears(ctx: inngest.Context) -> None:
        CALLS[ctx.run_id] += 1
        steps: tuple[Any, ...] = (lambda: ctx.step.run("1a", lambda: None), lambda: ctx.step.run("1b", lambda: None))
        if CALLS[ctx.run_id] == 1:
            steps += (lambda: ctx.step.run("1c", lambda: None),)
        await ctx.group.parallel(steps)
        await ctx.step.run("after", lambda: None)

    @client.create_function(fn_id="fresh-attempts", trigger=inngest.TriggerEvent(event="py/fresh"), retries=1)
    async def fresh_attempts(ctx: inngest.Context) -> str:
        await ctx.step.run("step_1", lambda: None)
        CALLS[f"fn:{ctx.run_id}"] += 1
        if CALLS[f"fn:{ctx.run_id}"] == 1:
            raise inngest.RetryAfterError("function-level, once", 1000, quiet=True)
        await ctx.step.run("step_2", lambda: None)

        def step_3() -> None:
            CALLS[f"step:{ctx.run_id}"] += 1
            if CALLS[f"step:{ctx.run_id}"] == 1:
                raise inngest.RetryAfterError("step-level, once", 1000, quiet=True)

        await ctx.step.run("step_3", step_3)
        return "done"

    @client.create_function(fn_id="race", trigger=inngest.TriggerEvent(event="py/race"), retries=0)
    async def race(ctx: inngest.Context) -> None:
        effect("request:race")

        async def fast() -> None:
            await ctx.step.run("a.1", lambda: effect("order:a.1"))
            await ctx.step.run("a.2", lambda: effect("order:a.2"))

        async def slow_step(name: str) -> None:
            await asyncio.sleep(0.5)
            effect(f"order:{name}")

        async def slow() -> None:
            await ctx.step.run("b.1", slow_step, "b.1")
            await ctx.step.run("b.2", slow_step, "b.2")

        await ctx.group.parallel((fast, slow), parallel_mode=inngest.ParallelMode.RACE)

    @client.create_function(
        fn_id="single-skip",
        trigger=inngest.TriggerEvent(event="py/single-skip"),
        singleton=inngest.Singleton(mode="skip"),
    )
    async def single_skip(ctx: inngest.Context) -> None:
        await ctx.step.sleep("zzz", datetime.timedelta(seconds=2))

    @client.create_function(
        fn_id="single-cancel",
        trigger=inngest.TriggerEvent(event="py/single-cancel"),
        singleton=inngest.Singleton(mode="cancel"),
    )
    async def single_cancel(ctx: inngest.Context) -> None:
        await ctx.step.sleep("zzz", datetime.timedelta(seconds=2))

    @client.create_function(
        fn_id="cancellable",
        trigger=inngest.TriggerEvent(event="py/cancellable"),
        cancel=[inngest.Cancel(event="py/cancellable.cancel", if_exp="event.data.id == async.data.id")],
        retries=0,
    )
    async def cancellable(ctx: inngest.Context) -> str:
        await ctx.step.sleep("zzz", datetime.timedelta(seconds=2))
        return "not cancelled"

    @client.create_function(fn_id="slow-invokee", trigger=inngest.TriggerEvent(event="py/never"), retries=0)
    async def slow_invokee(ctx: inngest.Context) -> None:
        await ctx.step.sleep("sleep", datetime.timedelta(minutes=1))

    @client.create_function(fn_id="impatient", trigger=inngest.TriggerEvent(event="py/impatient"), retries=0)
    async def impatient(ctx: inngest.Context) -> None:
        try:
            await ctx.step.invoke("invoke", function=slow_invokee, timeout=datetime.timedelta(seconds=1))
        except inngest.StepError as exc:
            effect(f"invoke-error:{exc.name}")
            raise

    return [
        coded,
        nap_child,
        fan,
        converge,
        disappears,
        fresh_attempts,
        race,
        single_skip,
        single_cancel,
        cancellable,
        slow_invokee,
        impatient,
    ]
