"""Helpers for the Store contract suite: functions to define, events, commits and claims, all
through the Store protocol alone (so every backend is held to the same behaviour)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from outlast.core.config import CronTrigger, EventTrigger, FunctionConfig
from outlast.core.ids import new_ulid
from outlast.core.models import AppScope, Claimed, Commit, EventFilter, EventRecord, Run, StepWrite
from outlast.core.planner import Planner
from outlast.core.registry import Registry
from outlast.core.validation import validate
from outlast.storage.base import Store

T0 = 1_700_000_000_000
LEASE = 1_000
APP_ID = "contract"
APP = AppScope(app_id=APP_ID)
FN = FunctionConfig(app_id=APP_ID, id="fn", name="fn", triggers=(EventTrigger(event="c/go"),))


def function(fid: str, trigger: str = "c/go", **options: Any) -> FunctionConfig:
    """A function of the contract app triggered by `trigger` (an event name, or `cron:<schedule>`)."""
    triggers = (
        (CronTrigger(cron=trigger.removeprefix("cron:")),)
        if trigger.startswith("cron:")
        else (EventTrigger(event=trigger),)
    )
    return validate(replace(FN, id=fid, name=fid, triggers=triggers, **options))


async def define(
    store: Store, *configs: FunctionConfig, now: int = T0, mode: str = "merge", app_id: str = APP_ID
) -> None:
    """Sync functions and let the store's planner see every stored function."""
    await store.sync_functions(app_id, list(configs), now, mode=mode)  # type: ignore[arg-type]
    planner: Planner = store.planner  # type: ignore[attr-defined]
    planner.registry = Registry((await store.load_functions())[1])


def event(name: str = "c/go", dedupe_id: str | None = None, *, at: int = T0, **data: Any) -> EventRecord:
    return EventRecord(id=new_ulid(at), name=name, data=data, user={}, ts=at, dedupe_id=dedupe_id)


def commit(c: Claimed, now: int, **parts: Any) -> Commit:
    return Commit(item_id=c.item_id, lease_token=c.lease_token, run_id=c.run.run_id, now_ms=now, **parts)


def step(key: str, output: Any = None, **fields: Any) -> StepWrite:
    values: dict[str, Any] = dict(
        key=key, step_id=key, kind="run", status="completed", attempts=1, started_at=T0, ended_at=T0, output=output
    )
    return StepWrite(**{**values, **fields})


def pending(
    key: str, *, kind: str = "sleep", status: str = "sleeping", deadline: int, timeout_output: Any = None
) -> StepWrite:
    return StepWrite(
        key=key,
        step_id=key,
        kind=kind,
        status=status,
        attempts=0,
        started_at=T0,
        deadline=deadline,
        timeout_output=timeout_output,
    )


#: claims in contract tests take an abandoned item over at once: the crash backoff, which makes
#: it wait, is under test in test_crashes.py only
NO_CRASH_BACKOFF = {"crash_backoff_scale": 0.0}


async def claim_one(store: Store, owner: str, now: int, scope: AppScope = APP, **options: Any) -> Claimed:
    claimed = await store.claim(scope, owner, 10, now, LEASE, **{**NO_CRASH_BACKOFF, **options})
    assert len(claimed) == 1, f"expected one claimed item, got {len(claimed)}"
    return claimed[0]


async def runs(store: Store, **flt: Any) -> list[Run]:
    """The app's runs, oldest first."""
    from outlast.core.models import RunFilter

    return list(reversed(await store.list_runs(RunFilter(app_id=APP_ID, **flt))))


async def run(store: Store, run_id: str) -> Run:
    found = await store.get_run(run_id)
    assert found is not None
    return found


async def event_names(store: Store, name: str) -> list[EventRecord]:
    return await store.list_events(EventFilter(name=name))
