"""Reads: events, runs with their steps and failure histories, and run listings."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.models import AttemptRecord, EventRecord, Run, RunFilter, StepRecord
from outlast.storage.sql.tx import Tx, marks

RUN_COLUMNS = ("id, app_id, function_id, status, event_ids, output, error, created_at, started_at, ended_at,"
               " parent_run_id, skip_reason")
_loads = jsonutil.loads


def get_events(tx: Tx, ids: list[str]) -> list[EventRecord]:
    if not ids:
        return []
    rows = tx.all("SELECT id, name, data, user_data, ts, dedupe_id, received_at, trace FROM events"
                  f" WHERE id IN ({marks(len(ids))})", ids)
    by_id = {r[0]: event_from_row(r) for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def event_from_row(r: Any) -> EventRecord:
    return EventRecord(id=r[0], name=r[1], data=_loads(r[2]), user=_loads(r[3]), ts=r[4], dedupe_id=r[5],
                       received_at=r[6], trace=_loads(r[7]))


def get_run(tx: Tx, run_id: str) -> Run | None:
    row = tx.one(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
    if row is None:
        return None
    run = run_from_row(row)
    failures: dict[str, list[AttemptRecord]] = {}
    for key, attempt, error, started, ended in tx.all(
            "SELECT step_key, attempt, error, started_at, ended_at FROM step_failures WHERE run_id = ?"
            " ORDER BY step_key, attempt", (run_id,)):
        failures.setdefault(key, []).append(AttemptRecord(attempt=attempt, error=_loads(error), started_at=started,
                                                          ended_at=ended))
    run.failures = failures.pop("", [])
    run.steps = [StepRecord(id=r[0], key=r[1], kind=r[2], status=r[3], attempts=r[4], output=_loads(r[5]),
                            error=_loads(r[6]), started_at=r[7], ended_at=r[8], deadline=r[9], detail=_loads(r[10]),
                            failures=failures.get(r[1], []))
                 for r in tx.all("SELECT step_id, key, kind, status, attempts, output, error, started_at, ended_at,"
                                 " deadline, detail FROM steps WHERE run_id = ? ORDER BY seq, key", (run_id,))]
    return run


def list_runs(tx: Tx, f: RunFilter) -> list[Run]:
    where, params = [], []
    for column, value in (("app_id", f.app_id), ("function_id", f.function_id), ("status", f.status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if f.event_id is not None:  # LIKE narrows the rows; the exact test is below
        where.append("(first_event_id = ? OR event_ids LIKE ? ESCAPE '!')")
        escaped = f.event_id.replace("!", "!!").replace("%", "!%").replace("_", "!_")
        params += [f.event_id, f'%"{escaped}"%']
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = tx.all(f"SELECT {RUN_COLUMNS} FROM runs {clause} ORDER BY id DESC LIMIT ?", (*params, f.limit))
    runs = [run_from_row(r) for r in rows]
    return runs if f.event_id is None else [r for r in runs if f.event_id in r.event_ids]


def run_from_row(r: Any) -> Run:
    return Run(id=r[0], app_id=r[1], function_id=r[2], status=r[3], event_ids=_loads(r[4]), output=_loads(r[5]),
               error=_loads(r[6]), created_at=r[7], started_at=r[8], ended_at=r[9], parent_run_id=r[10],
               skip_reason=r[11])
