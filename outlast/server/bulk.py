"""Bulk actions: rerun the failed runs of a function over a time range (or those it skipped while
it was paused), or cancel the active runs matching a filter. A job runs in the background of the
server process, page by page (keyset cursor), one run at a time, and reports its progress; the
dashboard and the read API show it.

Jobs live in memory: a server restart forgets them (the runs they created or cancelled stay).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from outlast.core.ids import new_ulid
from outlast.core.models import RunFilter
from outlast.errors import OutlastError
from outlast.runtime.engine import Engine
from outlast.server.actions import rerun_run

log = logging.getLogger("outlast.bulk")
Action = Literal["replay", "cancel"]
#: what a replay reruns: failed runs, and the runs a paused function recorded as skipped
REPLAYABLE = ("failed", "skipped")
_PAGE = 200
#: counting what a job will touch stops here (the job itself goes on to the end)
_COUNT_CAP = 1_000_000
MAX_KEPT_JOBS = 50


@dataclass(slots=True, kw_only=True)
class Job:
    id: str
    action: Action
    filter: RunFilter
    created_at: int
    total: int = 0
    done: int = 0
    failed: int = 0
    finished_at: int | None = None
    state: str = "running"  # running | done | failed
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        f = self.filter
        return {
            "id": self.id,
            "action": self.action,
            "state": self.state,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "errors": self.errors[:20],
            "filter": {
                "app_id": f.app_id,
                "function_id": f.function_id,
                "status": f.status,
                "since": f.since,
                "until": f.until,
            },
        }


class Bulk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, action: Action, flt: RunFilter) -> Job:
        if action == "replay":
            if not (flt.app_id and flt.function_id):
                raise OutlastError("replay: choose a function (its failed runs are rerun)")
            flt.status = flt.status or "failed"
            if flt.status not in REPLAYABLE:
                raise OutlastError(
                    f"replay: only failed runs, or runs skipped while the function was paused, are replayed, "
                    f"not {flt.status!r} ones"
                )
        elif flt.status not in (None, "queued", "running"):
            raise OutlastError(f"cancel: only active runs (queued, running) can be cancelled, not {flt.status!r}")
        job = Job(
            id=new_ulid(self.engine.clock.now_ms()), action=action, filter=flt, created_at=self.engine.clock.now_ms()
        )
        job.total = await self._count(job)
        self.jobs[job.id] = job
        self._forget_old()
        task = asyncio.create_task(self._work(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def list(self) -> list[Job]:
        return sorted(self.jobs.values(), key=lambda j: j.id, reverse=True)

    async def _count(self, job: Job) -> int:
        counts = await self.engine.reads.count_runs(job.filter, _COUNT_CAP)
        statuses = [job.filter.status] if job.filter.status else ["queued", "running"]
        return sum(counts.counts.get(s, 0) for s in statuses)

    async def _work(self, job: Job) -> None:
        try:
            for status in [job.filter.status] if job.filter.status else ["queued", "running"]:
                await self._each(job, status)
            job.state = "done"
        except Exception as exc:  # a store failure: the job stops, what it did stays done
            log.exception("bulk %s %s stopped", job.action, job.id)
            job.state = "failed"
            job.errors.append(f"stopped: {exc}")
        job.finished_at = self.engine.clock.now_ms()

    async def _each(self, job: Job, status: str) -> None:
        f = job.filter
        cursor: str | None = None
        horizon = job.id  # runs created after the job started are not part of it
        while True:
            page = await self.engine.reads.list_runs(
                RunFilter(
                    app_id=f.app_id,
                    function_id=f.function_id,
                    status=status,
                    since=f.since,
                    until=f.until,
                    before=cursor or horizon,
                    limit=_PAGE,
                )
            )
            for run in page:
                try:
                    if job.action == "replay":
                        await rerun_run(self.engine, run.id)
                    elif not await self.engine.cancel_run(run.id):
                        continue  # it ended meanwhile
                    job.done += 1
                except OutlastError as exc:
                    job.failed += 1
                    job.errors.append(f"{run.id}: {exc}")
            if len(page) < _PAGE:
                return
            cursor = page[-1].id

    def _forget_old(self) -> None:
        finished = [j for j in self.list() if j.state != "running"]
        for job in finished[MAX_KEPT_JOBS:]:
            self.jobs.pop(job.id, None)
