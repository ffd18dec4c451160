"""An app whose steps end their process or raise what usually ends one, for worker crash tests."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import outlast
from outlast import Context
from outlast.errors import StepError

app = outlast.Outlast("crashers")
POISON_EXIT_CODE = 3


def _die() -> None:
    os._exit(POISON_EXIT_CODE)  # no cleanup, no commit: as if killed


def _work(i: int) -> int:
    time.sleep(0.2)  # long enough to be in flight when the poison run kills the worker
    return i


@app.function(id="poison", trigger="crash/poison", retries=0)
async def poison(ctx: Context) -> str:
    await ctx.step.run("die", _die)
    return "unreachable"


@app.function(id="steady", trigger="crash/steady")
async def steady(ctx: Context) -> int:
    total = 0
    for i in range(3):
        total += await ctx.step.run(f"work-{i}", _work, i)
    return total


def _exit() -> None:
    sys.exit(2)


async def _interrupt() -> None:
    raise KeyboardInterrupt


@app.function(id="raiser", trigger="crash/raise", retries=1)
async def raiser(ctx: Context) -> dict[str, Any]:
    body = {"exit": _exit, "interrupt": _interrupt}[ctx.event.data["kind"]]
    try:
        await ctx.step.run("raise", body)
    except StepError as exc:
        return {"caught": exc.name}
    return {"caught": None}


def _die_once(marker: str) -> None:
    """End the process the first time (as if killed mid-run), succeed when the run resumes."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(POISON_EXIT_CODE)


@app.function(id="publisher", trigger="crash/publish")
async def publisher(ctx: Context) -> str:
    channel = f"crash:{ctx.event.data['id']}"
    await ctx.step.publish("before", channel=channel, topic="progress", data="before")
    await ctx.step.run("die-once", _die_once, ctx.event.data["marker"])
    await ctx.step.publish("after", channel=channel, topic="progress", data="after")
    return "done"


def _noted(path: str, name: str) -> str:
    with open(path, "a") as effects:
        effects.write(f"{name}\n")
    return name


@app.function(id="dies-before-end", trigger="crash/before-end")
async def dies_before_end(ctx: Context) -> str:
    """Its worker dies once after the last step returned, before the run's end is stored."""
    effects = ctx.event.data["effects"]
    done = [await ctx.step.run(name, _noted, effects, name) for name in ("a", "b", "c")]
    _die_once(ctx.event.data["marker"])
    return "".join(done)
