"""Reads: events, runs with their steps and failure histories, listings with cursors, what
each event did, and the event names worth suggesting. Every listing is newest first by id (ULIDs:
creation order), and pages with `before` (an id cursor), so a deep page costs an index seek, not
an offset scan."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.events import SYSTEM_PREFIX
from outlast.core.ids import ulid_floor
from outlast.core.models import (
    AttemptRecord,
    EventEffect,
    EventFilter,
    EventRecord,
    LogLine,
    Run,
    RunFilter,
    StepRecord,
)
from outlast.storage.sql.dedupe import CHUNK, DEDUPE_MS
from outlast.storage.sql.tx import Tx, marks

#: the `step_failures` key of crashed attempts (see `crashes`): step keys are SHA-1 hex, and a
#: function's own failures are ''
CRASH_KEY = "crash"

RUN_COLUMNS = (
    "id, app_id, function_id, status, event_ids, output, error, created_at, started_at, ended_at,"
    " parent_run_id, skip_reason"
)
EVENT_COLUMNS = "id, name, data, user_data, ts, dedupe_id, received_at, trace"
_loads = jsonutil.loads


def get_events(tx: Tx, ids: list[str]) -> list[EventRecord]:
    if not ids:
        return []
    rows = tx.all(f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({marks(len(ids))})", ids)
    by_id = {r[0]: event_from_row(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def event_from_row(r: Any) -> EventRecord:
    return EventRecord(
        id=r[0],
        name=r[1],
        data=_loads(r[2]),
        user=_loads(r[3]),
        ts=r[4],
        dedupe_id=r[5],
        received_at=r[6],
        trace=_loads(r[7]),
    )


def list_events(tx: Tx, f: EventFilter) -> list[EventRecord]:
    where, params = _id_window(f.since, f.until, f.before)
    if f.name is not None:
        where.append("name = ?")
        params.append(f.name)
    elif not f.system:
        where.append("name NOT LIKE ?")
        params.append(SYSTEM_PREFIX + "%")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return [
        event_from_row(r)
        for r in tx.all(f"SELECT {EVENT_COLUMNS} FROM events {clause} ORDER BY id DESC LIMIT ?", (*params, f.limit))
    ]


def run_for_sender_id(tx: Tx, *, app_id: str, function_id: str, sender_id: str, now: int) -> str | None:
    """The run of the function started by the event that holds the sender's id `sender_id` (it was
    received in the 24 h before `now`, the id's dedupe window; later events with that id start
    nothing, so it is the only one of them with runs). By index: the events with that id, a page
    at a time (usually one), then their runs."""
    after = ""
    while True:
        page = [
            r[0]
            for r in tx.all(
                "SELECT id FROM events WHERE dedupe_id = ? AND received_at > ? AND id > ? ORDER BY id LIMIT ?",
                (sender_id, now - DEDUPE_MS, after, CHUNK),
            )
        ]
        if not page:
            return None
        runs = tx.all(f"SELECT id, app_id, function_id FROM runs WHERE first_event_id IN ({marks(len(page))})", page)
        found = [str(r[0]) for r in runs if (r[1], r[2]) == (app_id, function_id)]
        if found:
            return max(found)
        after = page[-1]


def event_effects(tx: Tx, event_id: str) -> list[EventEffect]:
    """The runs an event started, joined, resumed or cancelled, oldest run first."""
    rows = tx.all(
        "SELECT r.id, 'started', r.app_id, r.function_id, r.status FROM runs r WHERE r.first_event_id = ?"
        " UNION SELECT r.id, x.effect, r.app_id, r.function_id, r.status FROM event_effects x"
        " JOIN runs r ON r.id = x.run_id WHERE x.event_id = ? ORDER BY 1, 2",
        (event_id, event_id),
    )
    return [EventEffect(run_id=r[0], effect=r[1], app_id=r[2], function_id=r[3], status=r[4]) for r in rows]


def event_names(tx: Tx, recent: int) -> list[str]:
    """Names of the newest `recent` events and of every stored function's event triggers, sorted."""
    names = {
        r[0] for r in tx.all("SELECT name FROM (SELECT name FROM events ORDER BY id DESC LIMIT ?) newest", (recent,))
    }
    for (config,) in tx.all("SELECT config FROM functions ORDER BY app_id, function_id"):
        names.update(t["event"] for t in jsonutil.loads(config).get("triggers") or [] if "event" in t)
    return sorted(names)


def run_alone(tx: Tx, run_id: str) -> Run | None:
    """The run's own row: no steps, no failures."""
    row = tx.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
    return None if row is None else run_from_row(row)


def get_run(tx: Tx, run_id: str) -> Run | None:
    run = run_alone(tx, run_id)
    if run is None:
        return None
    failures: dict[str, list[AttemptRecord]] = {}
    for key, attempt, error, started, ended in tx.all(
        "SELECT step_key, attempt, error, started_at, ended_at FROM step_failures WHERE run_id = ?"
        " ORDER BY step_key, attempt",
        (run_id,),
    ):
        failures.setdefault(key, []).append(
            AttemptRecord(attempt=attempt, error=_loads(error), started_at=started, ended_at=ended)
        )
    run.failures = sorted(failures.pop("", []) + failures.pop(CRASH_KEY, []), key=lambda f: f.ended_at or 0)
    run.steps = [
        StepRecord(
            id=r[0],
            key=r[1],
            kind=r[2],
            status=r[3],
            attempts=r[4],
            output=_loads(r[5]),
            error=_loads(r[6]),
            started_at=r[7],
            ended_at=r[8],
            deadline=r[9],
            detail=_loads(r[10]),
            failures=failures.get(r[1], []),
        )
        for r in tx.all(
            "SELECT step_id, key, kind, status, attempts, output, error, started_at, ended_at,"
            " deadline, detail FROM steps WHERE run_id = ? ORDER BY seq, key",
            (run_id,),
        )
    ]
    return run


def run_logs(tx: Tx, run_id: str) -> list[LogLine]:
    return [
        LogLine(ts=r[0], level=r[1], message=r[2], step_id=r[3])
        for r in tx.all("SELECT ts, level, message, step_id FROM run_logs WHERE run_id = ? ORDER BY seq", (run_id,))
    ]


def list_runs(tx: Tx, f: RunFilter) -> list[Run]:
    where, params = run_conditions(f)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = tx.all(f"SELECT {RUN_COLUMNS} FROM runs {clause} ORDER BY id DESC LIMIT ?", (*params, f.limit))
    return [run_from_row(r) for r in rows]


def run_conditions(f: RunFilter, *, with_status: bool = True) -> tuple[list[str], list[Any]]:
    """The WHERE conditions of a run filter (its limit aside): the time window and cursor on the
    id, the app, function and (unless `with_status` is False) status, and the event."""
    where, params = _id_window(f.since, f.until, f.before)
    columns = [("app_id", f.app_id), ("function_id", f.function_id)] + ([("status", f.status)] if with_status else [])
    for column, value in columns:
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if f.event_id is not None:
        # One IN over both ways a run belongs to an event (not `first_event_id = ? OR id IN (...)`,
        # which PostgreSQL answers by filtering every run, newest first, while the index on
        # first_event_id and the effects' key find the few at once).
        where.append(
            "id IN (SELECT id FROM runs WHERE first_event_id = ? UNION ALL"
            " SELECT run_id FROM event_effects WHERE event_id = ? AND effect = 'started')"
        )
        params += [f.event_id, f.event_id]
    return where, params


def _id_window(since: int | None, until: int | None, before: str | None) -> tuple[list[str], list[Any]]:
    """Conditions on a ULID `id` column for a creation-time window and a cursor."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("id >= ?")
        params.append(ulid_floor(since))
    if until is not None:
        where.append("id < ?")
        params.append(ulid_floor(until))
    if before is not None:
        where.append("id < ?")
        params.append(before)
    return where, params


def run_from_row(r: Any) -> Run:
    return Run(
        id=r[0],
        app_id=r[1],
        function_id=r[2],
        status=r[3],
        event_ids=_loads(r[4]),
        output=_loads(r[5]),
        error=_loads(r[6]),
        created_at=r[7],
        started_at=r[8],
        ended_at=r[9],
        parent_run_id=r[10],
        skip_reason=r[11],
    )
