"""Ingest: events, the runs they start under flow control, the waits they resolve, cancellation;
and the functions (with their cron items) that plan them. As `outlast.storage.sql.logic`."""

from __future__ import annotations

import bisect
import heapq
from dataclasses import replace
from typing import Any, cast

from outlast.core import flow
from outlast.core.cron_items import cron_items, next_tick
from outlast.core.expressions import lookup
from outlast.core.ids import new_ulid
from outlast.core.registry import RunPlan, WaitSpec
from outlast.core.system_events import run_ended_events
from outlast.events import EventRecord
from outlast.models import ACTIVE_STATUSES
from outlast.storage.base import PENDING_STEP_STATUSES, Planner
from outlast.storage.memory.queue import Queue
from outlast.storage.memory.tables import EventRow, Gathering, RunRow, WaitRow, dumps, loads
from outlast.storage.sql.logic import DEDUPE_MS

_PURGE = 8  # expired idempotency keys dropped per key taken, as SQL


class Ingest(Queue):
    # -- functions -------------------------------------------------------------------------------

    def _sync_functions(self, app_id: str, configs: list[dict[str, Any]], now: int) -> bool:
        self._sync_crons(app_id, configs, now)
        wanted = {c["id"]: dumps(c) for c in configs}
        if self._functions.get(app_id, {}) == wanted:
            return False
        self._delete(self._functions, app_id)  # re-added last, as SQL's re-inserted rows are
        self._set(self._functions, app_id, wanted)
        self._set(self._meta, "functions_version", self._meta["functions_version"] + 1)
        return True

    def _sync_crons(self, app_id: str, configs: list[dict[str, Any]], now: int) -> None:
        """One queue item per cron trigger; kept when unchanged, so restarts never add ticks."""
        wanted = cron_items(app_id, configs)
        existing = {i: loads(self._items[i].payload) for i in self._crons.get(app_id, {})}
        for item_id, payload in existing.items():
            if item_id not in wanted or payload != wanted[item_id]:
                self._delete_item(item_id)
                self._delete_in(self._crons, app_id, item_id)
        for item_id, payload in wanted.items():
            if item_id not in existing or existing[item_id] != payload:
                self._enqueue(app_id, "cron", None, next_tick(payload, now), payload, item_id=item_id)
                self._set_in(self._crons, app_id, item_id, None)

    # -- events ----------------------------------------------------------------------------------

    def _ingest(self, planner: Planner, events: list[EventRecord], now: int) -> list[str]:
        for event in events:
            if event.id in self._events:
                continue  # already stored: this is a retried ingest
            self._set(self._events, event.id, EventRow(event.id, event.name, dumps(event.data), dumps(event.user),
                                                       event.ts, event.dedupe_id))
            if event.dedupe_id and not self._claim_key(f"event:{event.dedupe_id}", now):
                continue
            self._resolve_waits(planner, event, now)
            for plan in planner.plan(event, now):
                self._create_run(planner, plan, now)
        return [e.id for e in events]

    def _claim_key(self, key: str, now: int) -> bool:
        """Take an idempotency key for 24 h; False when it is already taken.

        Each call also drops a few expired keys, so the table stays about one day's worth."""
        expiry, dropped = self._dedupe_expiry, 0
        while expiry and expiry[0][0] <= now and dropped < _PURGE:
            expires_at, old = self._heap_pop(expiry)
            if self._dedupe.get(old) == expires_at:  # else a stale entry: the key was taken again
                self._delete(self._dedupe, old)
                dropped += 1
        expires = self._dedupe.get(key)
        if expires is not None and expires > now:
            return False
        self._set(self._dedupe, key, now + DEDUPE_MS)
        heapq.heappush(expiry, (now + DEDUPE_MS, key))
        return True

    # -- runs and flow control -------------------------------------------------------------------

    def _create_run(self, planner: Planner, plan: RunPlan, now: int) -> None:
        """Apply the plan's flow control, then insert the run, its item and its cancel waits."""
        if plan.rate_limit and not self._rate_admitted(plan.rate_limit, now):
            return self._insert_run(plan, now, skip="rate_limit")
        if plan.idempotency_key is not None and not self._claim_key(f"run:{plan.idempotency_key}", now):
            return self._insert_run(plan, now, skip="idempotency")
        if plan.singleton and not self._singleton_admitted(planner, plan, now):
            return self._insert_run(plan, now, skip="singleton")
        if (plan.debounce or plan.batch) and self._gathered(plan, now):
            return None
        due = plan.due_at  # a priority is already in it
        if plan.debounce:
            due = now + plan.debounce[1]
            self._set(self._gathering, plan.debounce[0], Gathering(plan.run_id, 1, now))
        elif plan.batch:
            due = now + plan.batch[2]
            self._set(self._gathering, plan.batch[0], Gathering(plan.run_id, 1, now))
        if plan.throttle:
            due = max(due, self._throttled_start(plan.throttle, now))
        self._insert_run(plan, now)
        self._enqueue(plan.app_id, "run", plan.run_id, due, keys=plan.concurrency)
        for wait in plan.cancel_waits:
            self._add_wait(plan.run_id, wait, now)
        if plan.start_deadline is not None:
            self._enqueue(plan.app_id, "timeout", plan.run_id, plan.start_deadline, {"type": "start"})
        return None

    def _insert_run(self, plan: RunPlan, now: int, skip: str | None = None) -> None:
        if plan.run_id in self._runs:
            raise ValueError(f"run {plan.run_id!r} already exists")  # SQL: primary key violation
        if not plan.event_ids:
            raise ValueError(f"run {plan.run_id!r} has no event")  # SQL: first_event_id = event_ids[0] raises
        singleton_key = plan.singleton[0] if plan.singleton and not skip else None
        run = RunRow(plan.run_id, plan.app_id, plan.function_id, "skipped" if skip else "queued",
                     tuple(plan.event_ids), plan.created_at, plan.parent_run_id, skip, now if skip else None,
                     plan.finish_timeout_ms, singleton_key)
        self._set(self._runs, run.id, run)
        ids = self._run_ids
        if ids and ids[-1] > run.id:
            bisect.insort(ids, run.id)
        else:
            ids.append(run.id)  # the usual case: ULIDs grow
        self._record(lambda: ids.remove(run.id))
        for event_id in run.event_ids:
            self._set_in(self._runs_by_event, event_id, run.id, None)
        if singleton_key is not None:
            self._set_in(self._singletons, singleton_key, run.id, None)

    def _set_run_events(self, run: RunRow, event_ids: tuple[str, ...]) -> None:
        for event_id in set(run.event_ids) - set(event_ids):
            self._delete_in(self._runs_by_event, event_id, run.id)
        for event_id in event_ids:
            self._set_in(self._runs_by_event, event_id, run.id, None)
        self._set(self._runs, run.id, replace(run, event_ids=event_ids))

    def _close_run(self, run: RunRow, **changes: Any) -> None:
        """Give an active run its final status and fields."""
        self._set(self._runs, run.id, replace(run, **changes))
        if run.singleton_key is not None:
            self._delete_in(self._singletons, run.singleton_key, run.id)

    def _rate_admitted(self, rule: tuple[str, int, int], now: int) -> bool:
        key, limit, period = rule
        admitted, tat = flow.rate_limit(self._gcra.get(key), now, limit, period)
        if admitted:
            self._set(self._gcra, key, tat)
        return admitted

    def _throttled_start(self, rule: tuple[str, int, int, int], now: int) -> int:
        key, limit, period, burst = rule
        start, tat = flow.throttle(self._gcra.get(key), now, limit, period, burst)
        self._set(self._gcra, key, tat)
        return start

    def _singleton_admitted(self, planner: Planner, plan: RunPlan, now: int) -> bool:
        assert plan.singleton is not None
        key, mode = plan.singleton
        # SQLite's order (its index on (singleton_key, status)): queued runs, then running ones
        active = sorted(self._singletons.get(key, {}), key=lambda run_id: self._runs[run_id].status)
        if active and mode == "skip":
            return False
        for run_id in active:
            self._cancel_run(planner, run_id, now, "replaced by a newer run (singleton)")
        return True

    def _gathered(self, plan: RunPlan, now: int) -> bool:
        """Add the event to a debounced or batched run that has not started yet, if there is one."""
        key = (plan.debounce or plan.batch or ("",))[0]
        gathering = self._gathering.get(key)
        run = self._runs.get(gathering.run_id) if gathering is not None else None
        if gathering is None or run is None or run.status != "queued":
            return False
        items = (self._items[i] for i in self._items_by_run.get(run.id, ()))
        item = next((i for i in items if i.kind == "run" and i.lease_token is None), None)
        if item is None:
            return False
        if plan.debounce:
            if not plan.event_ids:
                raise ValueError(f"run {plan.run_id!r} has no event")  # SQL: first_event_id = event_ids[0]
            _, period, timeout = plan.debounce
            due = now + period if timeout is None else min(now + period, gathering.first_at + timeout)
            self._set_run_events(run, tuple(plan.event_ids))
            self._put_item(replace(item, due_at=due))
            return True
        assert plan.batch is not None
        events = run.event_ids + tuple(plan.event_ids)
        self._set_run_events(run, events)
        if len(events) >= plan.batch[1]:
            self._delete(self._gathering, key)
            self._put_item(replace(item, due_at=now))
        else:
            self._set(self._gathering, key, replace(gathering, size=len(events)))
        return True

    # -- waits -----------------------------------------------------------------------------------

    def _add_wait(self, run_id: str, w: WaitSpec, now: int) -> None:
        wait = WaitRow(new_ulid(), run_id, now, w)
        self._set(self._waits, wait.id, wait)
        self._set_in(self._waits_by_run, run_id, wait.id, None)
        if w.match_field is None:
            self._set_in(self._waits_by_expr, w.event_name, wait.id, None)
        else:
            self._set_in(self._waits_by_value, (w.event_name, w.match_field, w.match_value), wait.id, None)
            self._set_in(self._wait_fields, w.event_name, w.match_field, None)

    def _delete_wait(self, wait_id: str) -> None:
        wait = self._waits.get(wait_id)
        if wait is None:
            return
        w = wait.spec
        self._delete(self._waits, wait_id)
        self._delete_in(self._waits_by_run, wait.run_id, wait_id)
        if w.match_field is None:
            self._delete_in(self._waits_by_expr, w.event_name, wait_id)
        else:
            self._delete_in(self._waits_by_value, (w.event_name, w.match_field, w.match_value), wait_id)

    def _delete_step_waits(self, run_id: str, step_key: str) -> None:
        for wait_id in list(self._waits_by_run.get(run_id, ())):
            if self._waits[wait_id].spec.step_key == step_key:
                self._delete_wait(wait_id)

    def _matching_waits(self, planner: Planner, event: EventRecord, payload: dict[str, Any]) -> list[WaitRow]:
        """The waits an event matches, in SQLite's order: by created_at, ties as fetched (indexed
        waits field by field, then expression waits, each in insertion order, i.e. by wait id)."""
        found: list[WaitRow] = []
        for field in sorted(self._wait_fields.get(event.name, {})):
            bucket = self._waits_by_value.get((event.name, field, dumps(lookup(payload, field))), {})
            found += sorted(map(self._waits.__getitem__, bucket), key=lambda w: w.id)
        for wait_id in sorted(self._waits_by_expr.get(event.name, {})):
            wait = self._waits[wait_id]
            run = self._runs.get(wait.run_id)
            trigger = self._events.get(run.event_ids[0]) if run else None
            if trigger is not None and planner.matches(cast(str, wait.spec.expression), trigger.record().to_dict(),
                                                       payload):
                found.append(wait)
        return sorted(found, key=lambda w: w.created_at)

    def _resolve_waits(self, planner: Planner, event: EventRecord, now: int) -> None:
        payload = event.to_dict()
        for wait in self._matching_waits(planner, event, payload):  # a snapshot, as in SQL
            if wait.spec.expires_at <= now:
                continue  # timed out: its run's claim resolves it
            if wait.spec.kind == "cancel":
                self._cancel_run(planner, wait.run_id, now, "cancelled by event " + event.name)
            else:
                self._complete_wait(wait.run_id, wait.spec.kind, wait.spec.step_key, payload, now)

    def _complete_wait(self, run_id: str, kind: str, step_key: str | None, payload: dict[str, Any],
                       now: int) -> None:
        status, output, error = "completed", cast(Any, payload), cast(Any, None)
        if kind == "invoke":
            data = payload["data"]
            status = "failed" if "error" in data else "completed"
            output, error = (None, data["error"]) if status == "failed" else (data.get("result"), None)
        output_text, error_text = dumps(output), dumps(error) if error else None
        if step_key is None:
            return  # SQL: `key = NULL` matches nothing
        self._delete_step_waits(run_id, step_key)
        step = self._steps.get(run_id, {}).get(step_key)
        if step is not None and step.status in PENDING_STEP_STATUSES:
            self._set_in(self._steps, run_id, step_key, replace(
                step, status=status, output=output_text, error=error_text, ended_at=now, deadline=None))
            self._wake(run_id, now)

    def _wake(self, run_id: str, now: int) -> None:
        """Make a suspended run due now; a leased one resumes when its attempt ends."""
        for item_id in list(self._items_by_run.get(run_id, ())):
            item = self._items[item_id]
            if item.kind == "run":
                self._put_item(replace(item, woken=True, due_at=now if item.lease_token is None else item.due_at))

    # -- ending runs -----------------------------------------------------------------------------

    def _cancel_run(self, planner: Planner, run_id: str, now: int, reason: str) -> bool:
        error = {"name": "FunctionCancelled", "message": reason}
        run = self._runs.get(run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            return False
        self._close_run(run, status="cancelled", error=dumps(error), ended_at=now)
        self._end_run(planner, run_id, "cancelled", None, error, now)
        return True

    def _end_run(self, planner: Planner, run_id: str, status: str, output: Any, error: Any, now: int) -> None:
        for item_id in list(self._items_by_run.get(run_id, ())):
            self._delete_item(item_id)
        for wait_id in list(self._waits_by_run.get(run_id, ())):
            self._delete_wait(wait_id)
        run = self._runs.get(run_id)
        app_id, function_id, event_ids = (run.app_id, run.function_id, list(run.event_ids)) if run else ("", "", [])
        triggers = [self._events[i].record().to_dict() for i in event_ids if i in self._events]
        emitted = run_ended_events(app_id=app_id, function_id=function_id, run_id=run_id, trigger_events=triggers,
                                   status=status, output=output, error=error, now_ms=now)
        self._ingest(planner, emitted, now)
