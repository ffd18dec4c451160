"""The same 3-step function on the local driver (for bench/http_driver.py)."""

from __future__ import annotations

import time

import outlast

app = outlast.Outlast("bench-local")


async def _now() -> float:
    return time.time()


@app.function(id="three-steps", trigger="bench/go")
async def three_steps(ctx: outlast.Context) -> list[float]:
    return [await ctx.step.run(name, _now) for name in ("a", "b", "c")]
