"""An app whose worker dies once mid-run, after a step with a typed result committed: the next
worker replays that step from the memo and must get the same typed value back."""

from __future__ import annotations

import datetime
import os
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


def die_once() -> None:
    marker = os.environ["OUTLAST_TEST_EFFECTS"] + ".died"
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)  # no cleanup, no commit: as if killed


@app.function(id="typed", trigger="typed/crash")
async def typed(ctx: Context) -> dict[str, Any]:
    user = await ctx.step.run("make", make_user, ctx.event.data["id"])
    await ctx.step.run("die-once", die_once)
    return {"type": type(user).__name__, "id": user.id, "joined": type(user.joined).__name__}
