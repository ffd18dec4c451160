"""Replay: rerun, from their trigger events, the ended runs of one function with a status (failed
by default) created in a time range, as `app.replay` and the dashboard's bulk replay do. Each
rerun is its own transaction; a run that cannot be rerun (its function gone, its events pruned)
raises RerunError and stops the replay, with what it did kept."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from outlast.core.ids import ulid_floor
from outlast.core.models import FINAL_STATUSES, RunFilter
from outlast.errors import OutlastError
from outlast.runtime.rerun import rerun

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine

PAGE = 200
Time = int | datetime | None


async def replay(
    engine: Engine, *, app_id: str, function_id: str, status: str = "failed", since: Time = None, until: Time = None
) -> int:
    """Rerun the matching runs, oldest page last (newest first); return how many were rerun."""
    if status not in FINAL_STATUSES:
        raise OutlastError(f"status: expected one of {', '.join(FINAL_STATUSES)} (ended runs), got {status!r}")
    cursor = ulid_floor(engine.clock.now_ms() + 1)  # runs made by this replay come after it
    done = 0
    while True:
        page = await engine.store.list_runs(
            RunFilter(
                app_id=app_id,
                function_id=function_id,
                status=status,
                since=epoch_ms(since, "since"),
                until=epoch_ms(until, "until"),
                before=cursor,
                limit=PAGE,
            )
        )
        for run in page:
            await rerun(engine, run.id)
            done += 1
        if len(page) < PAGE:
            return done
        cursor = page[-1].id


def epoch_ms(value: Time, option: str) -> int | None:
    """A time bound given as a datetime or epoch milliseconds (None: unbounded), as ms."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise OutlastError(f"{option}: expected a datetime or milliseconds since the epoch, got {value!r}")
