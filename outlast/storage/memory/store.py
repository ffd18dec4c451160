"""`MemoryStore`: the Store protocol over the in-memory tables; claiming, committing and reading."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from outlast.core.cron_items import next_tick, tick_event
from outlast.core.ids import new_token
from outlast.events import EventRecord
from outlast.models import ACTIVE_STATUSES, Run, StepRecord
from outlast.storage.base import (
    FINAL_STEP_STATUSES,
    PENDING_STEP_STATUSES,
    Claimed,
    Commit,
    CommitResult,
    Finish,
    MemoEntry,
    Planner,
    PlannerSlot,
    RunFilter,
    RunState,
    StepWrite,
    Suspend,
    WorkerInfo,
)
from outlast.storage.memory.ingest import Ingest
from outlast.storage.memory.tables import Item, StepRow, dumps, loads


class MemoryStore(Ingest, PlannerSlot):
    # -- the Store protocol ---------------------------------------------------------------------

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def sync_functions(self, app_id: str, configs: list[dict[str, Any]], now_ms: int) -> bool:
        return self._write(lambda: self._sync_functions(app_id, configs, now_ms))

    async def load_functions(self) -> tuple[int, list[dict[str, Any]]]:
        return self._read(lambda: (self._meta["functions_version"],
                                   [loads(t) for app in self._functions.values() for t in app.values()]))

    async def functions_version(self) -> int:
        return self._read(lambda: self._meta["functions_version"])

    async def ingest(self, events: list[EventRecord], now_ms: int) -> list[str]:
        return self._write(lambda: self._ingest(self.planner, events, now_ms))

    async def claim(self, app_id: str, owner: str, limit: int, now_ms: int, lease_ms: int) -> list[Claimed]:
        return self._write(lambda: self._claim(self.planner, app_id, owner, limit, now_ms, lease_ms))

    async def extend_leases(self, owner: str, tokens: dict[str, str], until_ms: int) -> set[str]:
        return self._write(lambda: {i for i, t in tokens.items() if not self._relet(i, t, due_at=until_ms)})

    async def commit(self, commit: Commit) -> CommitResult:
        return self._write(lambda: self._commit(self.planner, commit))

    async def release(self, item_id: str, lease_token: str, due_at: int) -> None:
        self._write(lambda: self._relet(item_id, lease_token, due_at=due_at, lease_token=None, owner=None))

    async def next_due_at(self, app_id: str) -> int | None:
        return self._read(lambda: self._next_due(app_id))

    async def get_run(self, run_id: str) -> Run | None:
        return self.get_run_now(run_id)

    async def list_runs(self, flt: RunFilter) -> list[Run]:
        return self.list_runs_now(flt)

    async def get_events(self, event_ids: list[str]) -> list[EventRecord]:
        return self._read(lambda: self._get_events(event_ids))

    async def heartbeat(self, worker: WorkerInfo) -> None:
        self._write(lambda: self._heartbeat(worker))

    async def list_workers(self, since_ms: int) -> list[WorkerInfo]:
        return self._write(lambda: self._list_workers(since_ms))

    def get_run_now(self, run_id: str) -> Run | None:
        return self._read(lambda: self._get_run(run_id))

    def list_runs_now(self, flt: RunFilter) -> list[Run]:
        return self._read(lambda: self._list_runs(flt))

    async def cancel_run(self, run_id: str, now_ms: int, reason: str = "cancelled by request") -> bool:
        return self._write(lambda: self._cancel_run(self.planner, run_id, now_ms, reason))

    # -- claiming --------------------------------------------------------------------------------

    def _claim(self, planner: Planner, app_id: str, owner: str, limit: int, now: int,
               lease_ms: int) -> list[Claimed]:
        rows = self._take_due(app_id, limit, now)
        if not rows:
            return []
        token = new_token()
        for item in rows:
            self._put_item(replace(item, lease_token=token, owner=owner, due_at=now + lease_ms, woken=False))
        claimed: list[Claimed] = []
        run_ids: list[str] = []
        for item in rows:
            if item.kind == "timeout":
                self._fire_timeout(planner, item, now)
            elif item.kind == "cron":
                self._fire_cron(planner, item, now)
            else:
                claimed.append(Claimed(item.id, item.kind, token))
                run_ids.append(item.run_id or "")
        states = self._load_states(run_ids, now)
        for c, run_id in zip(claimed, run_ids, strict=True):
            c.run = states.get(run_id)
        return [c for c in claimed if c.run is not None]

    def _fire_timeout(self, planner: Planner, item: Item, now: int) -> None:
        self._delete_item(item.id)
        payload = loads(item.payload)
        run = self._runs.get(item.run_id) if item.run_id is not None else None
        if run is not None and (payload["type"] == "finish" or run.status == "queued"):
            self._cancel_run(planner, run.id, now, f"{payload['type']} timeout reached")

    def _fire_cron(self, planner: Planner, item: Item, now: int) -> None:
        """Start the scheduled run and move the item to the next tick after now (one catch-up at most)."""
        payload = loads(item.payload)
        self._ingest(planner, [tick_event(payload, now)], now)
        due = next_tick(payload, now)
        if (current := self._items.get(item.id)) is not None:
            self._put_item(replace(current, due_at=due, lease_token=None, owner=None))

    def _load_states(self, run_ids: list[str], now: int) -> dict[str, RunState]:
        self._resolve_deadlines(run_ids, now)
        self._start_runs(run_ids, now)
        states: dict[str, RunState] = {}
        for run_id in run_ids:
            run = self._runs.get(run_id)
            if run is None or run.status != "running":
                continue
            memo = {s.key: MemoEntry(s.key, s.step_id, s.kind, s.status, s.attempts, loads(s.output),
                                     loads(s.error), s.started_at, s.ended_at, s.deadline)
                    for s in self._steps_of(run_id)}
            states[run_id] = RunState(run_id, run.app_id, run.function_id, run.status,
                                      self._get_events(list(run.event_ids)), memo, run.attempt, run.created_at,
                                      run.started_at)
        return states

    def _start_runs(self, run_ids: list[str], now: int) -> None:
        """Queued runs become running; a finish timeout starts counting now."""
        for run_id in sorted(set(run_ids)):  # SQLite reads `id IN (...)` in id order
            run = self._runs.get(run_id)
            if run is None or run.status != "queued":
                continue
            self._set(self._runs, run_id, replace(run, status="running", started_at=now))
            if run.finish_timeout_ms:
                self._enqueue(run.app_id, "timeout", run_id, now + run.finish_timeout_ms, {"type": "finish"})

    def _resolve_deadlines(self, run_ids: list[str], now: int) -> None:
        """Sleeps that ended and waits/invokes that timed out become final memo rows."""
        for run_id in run_ids:
            for step in list(self._steps.get(run_id, {}).values()):
                if step.deadline is None or step.deadline > now or step.status not in PENDING_STEP_STATUSES:
                    continue
                failed = step.kind == "invoke"
                self._set_in(self._steps, run_id, step.key, replace(
                    step, status="failed" if failed else "completed", output=None if failed else step.timeout_output,
                    error=step.timeout_output if failed else None, ended_at=step.deadline, deadline=None))
                self._delete_step_waits(run_id, step.key)

    # -- committing ------------------------------------------------------------------------------

    def _commit(self, planner: Planner, c: Commit) -> CommitResult:
        if not self._relet(c.item_id, c.lease_token, due_at=c.lease_until):
            return CommitResult(False, "lost")
        for write in c.steps:
            self._write_step(c.run_id, write)
        for wait in c.waits:
            self._add_wait(c.run_id, wait, c.now_ms)
        if c.events:
            self._ingest(planner, c.events, c.now_ms)
        if isinstance(c.outcome, Suspend):
            self._suspend(c, c.outcome)
        elif isinstance(c.outcome, Finish):
            self._finish(planner, c, c.outcome)
        return CommitResult(True)

    def _write_step(self, run_id: str, w: StepWrite) -> None:
        """Upsert a memo row; a row in a final status is never overwritten."""
        row = StepRow(w.key, w.step_id, w.kind, w.status, w.attempts, dumps(w.output),
                      dumps(w.error) if w.error is not None else None, w.started_at, w.ended_at, w.deadline,
                      dumps(w.timeout_output), 0)
        old = self._steps.get(run_id, {}).get(w.key)
        if old is None:
            row = replace(row, seq=next(self._counter))  # monotonic, as SQL's new_seq()
        elif old.status in FINAL_STEP_STATUSES:
            return
        else:  # the first write's identity, start time and place in the trace stay
            row = replace(row, step_id=old.step_id, kind=old.kind, started_at=old.started_at, seq=old.seq)
        self._set_in(self._steps, run_id, w.key, row)

    def _suspend(self, c: Commit, s: Suspend) -> None:
        item = self._items.get(c.item_id)
        if item is not None:  # gone when this commit's own events cancelled the run
            self._put_item(replace(item, due_at=c.now_ms if item.woken else s.due_at, lease_token=None,
                                   owner=None, woken=False))
        run = self._runs.get(c.run_id)
        if s.attempt is not None and run is not None:
            self._set(self._runs, run.id, replace(run, attempt=s.attempt))

    def _finish(self, planner: Planner, c: Commit, f: Finish) -> None:
        """End the run, unless it already ended (this commit's own events cancelled it)."""
        output, error = dumps(f.output), dumps(f.error) if f.error else None
        run = self._runs.get(c.run_id)
        if run is not None and run.status in ACTIVE_STATUSES:
            self._close_run(run, status=f.status, output=output, error=error, ended_at=c.now_ms)
            self._end_run(planner, c.run_id, f.status, f.output, f.error, c.now_ms)

    # -- workers ---------------------------------------------------------------------------------

    def _heartbeat(self, w: WorkerInfo) -> None:
        old = self._workers.get(w.id)
        self._set(self._workers, w.id, replace(w) if old is None else replace(old, heartbeat_at=w.heartbeat_at))

    def _list_workers(self, since_ms: int) -> list[WorkerInfo]:
        """Workers seen since `since_ms`; older ones are forgotten."""
        for worker_id in [i for i, w in self._workers.items() if w.heartbeat_at < since_ms]:
            self._delete(self._workers, worker_id)
        return sorted((replace(w) for w in self._workers.values()), key=lambda w: w.started_at)

    # -- reading ---------------------------------------------------------------------------------

    def _get_events(self, ids: list[str]) -> list[EventRecord]:
        return [self._events[i].record() for i in ids if i in self._events]

    def _steps_of(self, run_id: str) -> list[StepRow]:
        return sorted(self._steps.get(run_id, {}).values(), key=lambda s: s.seq)

    def _get_run(self, run_id: str) -> Run | None:
        row = self._runs.get(run_id)
        if row is None:
            return None
        run = row.model()
        run.steps = [StepRecord(s.step_id, s.key, s.kind, s.status, s.attempts, loads(s.output), loads(s.error),
                                s.started_at, s.ended_at) for s in self._steps_of(run_id)]
        return run

    def _list_runs(self, f: RunFilter) -> list[Run]:
        """Newest first; an event filter (exact) starts from the event's index instead of every run."""
        candidates = (sorted(self._runs_by_event.get(f.event_id, ()), reverse=True) if f.event_id is not None
                      else reversed(self._run_ids))
        out: list[Run] = []
        for run_id in candidates:
            if len(out) == f.limit:
                break
            r = self._runs[run_id]
            if all(want is None or want == have for want, have in (
                    (f.app_id, r.app_id), (f.function_id, r.function_id), (f.status, r.status))):
                out.append(r.model())
        return out
