"""The bench's 3-step function on the official Inngest Python SDK, served by FastAPI.

Each step returns the wall time its body started, so the run's output gives the gaps between
steps (what one step costs end to end, the HTTP round trips included). GET /requests says how
many call requests the app has answered."""

from __future__ import annotations

import time
from typing import Any

import fastapi
import inngest
import inngest.fast_api

client = inngest.Inngest(app_id="bench-http", is_production=False)


@client.create_function(fn_id="three-steps", trigger=inngest.TriggerEvent(event="bench/go"))
async def three_steps(ctx: inngest.Context) -> list[float]:
    return [await ctx.step.run(name, time.time) for name in ("a", "b", "c")]


app = fastapi.FastAPI()
REQUESTS = {"requests": 0}


@app.middleware("http")
async def count_calls(request: fastapi.Request, call_next: Any) -> Any:
    if request.method == "POST":
        REQUESTS["requests"] += 1
    return await call_next(request)


@app.get("/requests")
async def requests() -> dict[str, int]:
    """How many call requests the app has answered."""
    return REQUESTS


inngest.fast_api.serve(app, client, [three_steps])
