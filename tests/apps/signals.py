"""An app whose runs wait for a signal between two recorded steps, for the signal race and crash
tests (the effects table of `tests.apps.effects` counts what each step body did)."""

from __future__ import annotations

import os
from typing import Any

import outlast
from outlast import Context
from tests.apps.effects import record

app = outlast.Outlast("signals")


@app.function(id="approve", trigger="sig/wait")
async def approve(ctx: Context) -> Any:
    await ctx.step.run("before", record, ctx.run_id, "before")
    timeout = os.environ.get("OUTLAST_TEST_SIGNAL_TIMEOUT", "10m")
    got = await ctx.step.wait_for_signal("approval", signal=f"s-{ctx.event.data['n']}", timeout=timeout)
    await ctx.step.run("after", record, ctx.run_id, "after")
    return got
