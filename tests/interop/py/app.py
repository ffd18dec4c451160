"""A FastAPI app on the official Inngest Python SDK, written as a user would write it.

Run by tests/interop (uvicorn in a subprocess). Every step body records that it ran in
OUTLAST_TEST_EFFECTS (a file, one line per call), so tests can assert that no committed step ran twice.
"""

from __future__ import annotations

import asyncio
import datetime
import os

import fastapi
import fidelity
import inngest
import inngest.fast_api
from inngest.experimental import ai, realtime

client = inngest.Inngest(
    app_id=os.environ.get("PY_APP_ID", "py-app"), is_production=os.environ.get("INNGEST_DEV", "0") in ("0", "false")
)
EFFECTS = os.environ.get("OUTLAST_TEST_EFFECTS", "")


def effect(name: str) -> None:
    """Remember that a step body ran: one line per call, appended (atomic for short lines)."""
    fd = os.open(EFFECTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name}\n".encode())
    finally:
        os.close(fd)


@client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="py/steps"))
async def steps(ctx: inngest.Context) -> dict[str, object]:
    async def one() -> int:
        effect(f"one:{ctx.event.data['n']}")
        return 1

    async def two(x: int) -> int:
        effect(f"two:{ctx.event.data['n']}")
        return x + 1

    a = await ctx.step.run("one", one)
    b = await ctx.step.run("two", two, a)
    await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
    await ctx.step.sleep_until("until", datetime.datetime.now(datetime.UTC) + datetime.timedelta(milliseconds=500))
    return {"a": a, "b": b, "n": ctx.event.data["n"]}


@client.create_function(fn_id="three-steps", trigger=inngest.TriggerEvent(event="py/three"))
async def three_steps(ctx: inngest.Context) -> int:
    total = 0
    for i in range(3):
        total += await ctx.step.run(f"s{i}", lambda i=i: i + 1)
    return total


@client.create_function(fn_id="parallel", trigger=inngest.TriggerEvent(event="py/parallel"))
async def parallel(ctx: inngest.Context) -> list[object]:
    async def branch(name: str) -> str:
        effect(f"branch:{name}")
        await asyncio.sleep(0.2)
        return name

    results = await ctx.group.parallel(
        (
            lambda: ctx.step.run("left", branch, "left"),
            lambda: ctx.step.run("right", branch, "right"),
            lambda: ctx.step.run("middle", branch, "middle"),
        )
    )
    after = await ctx.step.run("after", lambda: "after")
    return [*results, after]


@client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="py/wait"))
async def waiter(ctx: inngest.Context) -> dict[str, object]:
    got = await ctx.step.wait_for_event(
        "approval",
        event="py/approved",
        if_exp="event.data.id == async.data.id",
        timeout=datetime.timedelta(seconds=float(ctx.event.data.get("timeout", 30))),
    )
    return {"approved": got.data if got is not None else None}


@client.create_function(fn_id="child", trigger=inngest.TriggerEvent(event="py/child"))
async def child(ctx: inngest.Context) -> dict[str, object]:
    if ctx.event.data.get("fail"):
        raise inngest.NonRetriableError("child refused")
    return {"doubled": ctx.event.data["x"] * 2}


@client.create_function(fn_id="parent", trigger=inngest.TriggerEvent(event="py/parent"))
async def parent(ctx: inngest.Context) -> object:
    try:
        return await ctx.step.invoke("call-child", function=child, data=ctx.event.data)
    except inngest.StepError as exc:
        return {"child_failed": exc.message}


@client.create_function(fn_id="sender", trigger=inngest.TriggerEvent(event="py/send"))
async def sender(ctx: inngest.Context) -> list[str]:
    return await ctx.step.send_event("fan-out", [inngest.Event(name="py/sent", data={"i": i}) for i in range(2)])


@client.create_function(fn_id="receiver", trigger=inngest.TriggerEvent(event="py/sent"))
async def receiver(ctx: inngest.Context) -> object:
    return ctx.event.data


@client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="py/flaky"), retries=2)
async def flaky(ctx: inngest.Context) -> str:
    def attempt() -> str:
        effect(f"flaky:{ctx.attempt}")
        if ctx.attempt < 2:
            raise ValueError(f"attempt {ctx.attempt} fails")
        return f"ok at {ctx.attempt}"

    return await ctx.step.run("unsteady", attempt)


async def _failed_for_good(ctx: inngest.Context) -> None:
    effect(f"on-failure:{ctx.event.data['error']['message']}")


@client.create_function(
    fn_id="doomed", trigger=inngest.TriggerEvent(event="py/doomed"), retries=1, on_failure=_failed_for_good
)
async def doomed(ctx: inngest.Context) -> None:
    raise inngest.NonRetriableError("doomed from the start")


@client.create_function(
    fn_id="limited",
    trigger=inngest.TriggerEvent(event="py/limited"),
    rate_limit=inngest.RateLimit(limit=1, period=datetime.timedelta(minutes=1), key="event.data.user"),
    concurrency=[inngest.Concurrency(limit=1, key="event.data.user")],
)
async def limited(ctx: inngest.Context) -> object:
    return ctx.event.data["user"]


@client.create_function(
    fn_id="batched",
    trigger=inngest.TriggerEvent(event="py/batch"),
    batch_events=inngest.Batch(max_size=3, timeout=datetime.timedelta(seconds=5)),
)
async def batched(ctx: inngest.Context) -> list[object]:
    return [e.data["i"] for e in ctx.events]


@client.create_function(fn_id="hang", trigger=inngest.TriggerEvent(event="py/hang"), retries=0)
async def hang(ctx: inngest.Context) -> str:
    await asyncio.sleep(float(ctx.event.data.get("seconds", 5)))
    return "woke"


@client.create_function(fn_id="fn-error", trigger=inngest.TriggerEvent(event="py/fn-error"), retries=1)
async def fn_error(ctx: inngest.Context) -> None:
    effect(f"fn-error:{ctx.attempt}")
    raise ValueError(f"broken outside any step (attempt {ctx.attempt})")


@client.create_function(fn_id="big-state", trigger=inngest.TriggerEvent(event="py/big"))
async def big_state(ctx: inngest.Context) -> int:
    a = await ctx.step.run("big-a", lambda: "a" * 2_500_000)
    b = await ctx.step.run("big-b", lambda: "b" * 2_500_000)
    return await ctx.step.run("size", lambda: len(a) + len(b))


@client.create_function(fn_id="slow-steps", trigger=inngest.TriggerEvent(event="py/slow"))
async def slow_steps(ctx: inngest.Context) -> dict[str, object]:
    n = ctx.event.data["n"]

    async def work(name: str) -> str:
        effect(f"{name}:{n}")
        await asyncio.sleep(0.05 + (n * 37 % 10) / 20)
        return name

    return {"n": n, "done": [await ctx.step.run(name, work, name) for name in ("s1", "s2", "s3")]}


VARIANT = os.environ.get("PY_APP_VARIANT", "v1")


@client.create_function(fn_id="evolving", trigger=inngest.TriggerEvent(event="py/evolving"))
async def evolving(ctx: inngest.Context) -> list[str]:
    def first() -> str:
        effect(f"evolving-first:{ctx.event.data['n']}")
        return "first"

    done = [await ctx.step.run("first", first)]
    if VARIANT == "v1":
        await ctx.step.sleep("pause", datetime.timedelta(seconds=float(ctx.event.data.get("pause", 2))))
        done.append(await ctx.step.run("second", lambda: "second"))
    else:  # v2 removed the pause and renamed the last step
        done.append(await ctx.step.run("second-v2", lambda: "second-v2"))
    return done


@client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="py/sleeper"))
async def sleeper(ctx: inngest.Context) -> str:
    await ctx.step.run("before", lambda: "before")
    await ctx.step.sleep("pause", datetime.timedelta(seconds=2))
    return await ctx.step.run("after", lambda: "after")


@client.create_function(fn_id="inferrer", trigger=inngest.TriggerEvent(event="py/infer"), retries=1)
async def inferrer(ctx: inngest.Context) -> dict[str, object]:
    """`step.ai.infer`: the server makes the inference (an OpenAI-compatible provider)."""
    model = ai.openai.Adapter(auth_key="sk-s3cret-key", base_url=ctx.event.data["base_url"], model="gpt-test")
    body: dict[str, object] = {"messages": [{"role": "user", "content": ctx.event.data["prompt"]}]}
    answer = await ctx.step.ai.infer("ask", adapter=model, body=body)
    choices = answer["choices"]
    assert isinstance(choices, list)
    return {"said": choices[0]["message"]["content"], "model": answer["model"]}


@client.create_function(fn_id="publisher", trigger=inngest.TriggerEvent(event="py/publish"))
async def publisher(ctx: inngest.Context) -> str:
    async def publish() -> None:
        channel = f"py-progress:{ctx.event.data['id']}"
        await realtime.publish(client, channel=channel, topic="status", data={"stage": "published"})

    await ctx.step.run("publish", publish)
    return "published"


FUNCTIONS = [
    steps,
    three_steps,
    parallel,
    waiter,
    child,
    parent,
    sender,
    receiver,
    flaky,
    doomed,
    limited,
    batched,
    hang,
    fn_error,
    big_state,
    evolving,
    sleeper,
    slow_steps,
    inferrer,
    publisher,
]
FUNCTIONS += fidelity.functions(client, effect)
if VARIANT == "v2":  # a new version of the app: two functions are gone
    FUNCTIONS = [f for f in FUNCTIONS if f not in (receiver, sleeper)]
app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, FUNCTIONS)
