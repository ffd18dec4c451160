"""An app whose worker dies once mid-run, after a step with a typed result committed: the next
worker replays that step from the memo and must get the same typed value back."""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

from pydantic import BaseModel

import outlast
from outlast import Context

app = outlast.Outlast("typed-crash")


class User(BaseModel):
    id: str
    joined: datetime.datetime


def make_user(user_id: str) -> User:
    with open(os.environ["OUTLAST_TEST_EFFECTS"], "a") as effects:
        effects.write("make\n")
    return User(id=user_id, joined=datetime.datetime(2026, 12, 7, 16, 0, tzinfo=datetime.UTC))


def die_once(run_id: str) -> None:
    marker = os.environ["OUTLAST_TEST_EFFECTS"] + ".died"
    if not os.path.exists(marker):
        open(marker, "w").close()
        _until_stored(run_id, "make")  # `make`'s result may wait for the next commit (a few ms)
        os._exit(3)  # no cleanup, no commit: as if killed


def _until_stored(run_id: str, step_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = app.get_run(run_id)
        if run is not None and any(s.id == step_id for s in run.steps):
            return
        time.sleep(0.01)
    raise AssertionError(f"step {step_id!r} of run {run_id} was never stored")


@app.function(id="typed", trigger="typed/crash")
async def typed(ctx: Context) -> dict[str, Any]:
    user = await ctx.step.run("make", make_user, ctx.event.data["id"])
    await ctx.step.run("die-once", die_once, ctx.run_id)
    return {"type": type(user).__name__, "id": user.id, "joined": type(user.joined).__name__}
