"""An Outlast app whose run publishes realtime messages, for the interop tests' subscribers."""

from __future__ import annotations

import outlast
from outlast import Context

app = outlast.Outlast("py-publisher")


@app.function(id="publish", trigger="outlast/publish")
async def publish(ctx: Context) -> int:
    channel = f"progress:{ctx.event.data['id']}"
    await ctx.step.publish("python", channel=channel, topic="status", data={"stage": "python"})
    await ctx.step.publish("log", channel=channel, topic="log", data="not asked for")
    await ctx.step.publish("done", channel=channel, topic="status", data={"stage": "done", "by": "outlast"})
    return 2
