"""How runs link to events and to each other: the runs of many events at once, runs with their
first trigger event (a page of runs, or a function's active runs), the runs a run invoked, and
its reruns. Every listing is ordered and bounded by its caller's limit."""

from __future__ import annotations

from typing import Any

from outlast.core.ids import ulid_floor
from outlast.core.models import EventRecord, Run, RunFilter
from outlast.core.views import RerunLinks
from outlast.storage.sql import read
from outlast.storage.sql.read import EVENT_COLUMNS, RUN_COLUMNS, event_from_row, run_from_row
from outlast.storage.sql.tx import Tx, marks

_RUN_COLUMNS_R = ", ".join(f"r.{c.strip()}" for c in RUN_COLUMNS.split(","))
_EVENT_COLUMNS_E = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))


def runs_for_events(tx: Tx, event_ids: list[str], limit_per_event: int) -> dict[str, list[Run]]:
    """The runs each event started (or joined, for batches and debounces), oldest first, at most
    `limit_per_event` each; events that started nothing map to an empty list."""
    out: dict[str, list[Run]] = {eid: [] for eid in event_ids}
    if not event_ids:
        return out
    ids = marks(len(event_ids))
    rows = tx.all(
        f"SELECT r.first_event_id, {_RUN_COLUMNS_R} FROM runs r WHERE r.first_event_id IN ({ids})"
        f" UNION SELECT x.event_id, {_RUN_COLUMNS_R} FROM event_effects x JOIN runs r ON r.id = x.run_id"
        f" WHERE x.event_id IN ({ids}) AND x.effect = 'started' ORDER BY 1, 2",
        (*event_ids, *event_ids),
    )
    for row in rows:
        runs = out[row[0]]
        if len(runs) < limit_per_event:
            runs.append(run_from_row(row[1:]))
    return out


def active_runs_with_triggers(
    tx: Tx, *, app_id: str, function_id: str, since: int | None, until: int, after: str | None, limit: int
) -> list[tuple[str, EventRecord | None]]:
    """Queued or running runs of one function created in [since, until) with ids above `after`,
    by id, each with its first trigger event (None if that event is gone).

    One query per status, each an ordered range of `runs_by_function_status` (with `status IN`,
    SQLite walks every run of the function by id instead, finished ones too); merged here."""
    where = ["r.app_id = ?", "r.function_id = ?", "r.status = ?", "r.id < ?"]
    params: list[Any] = [app_id, function_id, ulid_floor(until)]
    if since is not None:
        where.append("r.id >= ?")
        params.append(ulid_floor(since))
    if after is not None:
        where.append("r.id > ?")
        params.append(after)
    sql = (
        f"SELECT r.id, {_EVENT_COLUMNS_E} FROM runs r LEFT JOIN events e ON e.id = r.first_event_id"
        f" WHERE {' AND '.join(where)} ORDER BY r.id LIMIT ?"
    )
    rows = sorted(
        row for status in ("queued", "running") for row in tx.all(sql, (*params[:2], status, *params[2:], limit))
    )[:limit]
    return [(r[0], None if r[1] is None else event_from_row(r[1:])) for r in rows]


def child_runs(tx: Tx, run_id: str, limit: int) -> list[tuple[str, EventRecord]]:
    """The runs this run invoked, by id, each with the `inngest/function.invoked` event that started it."""
    rows = tx.all(
        f"SELECT r.id, {_EVENT_COLUMNS_E} FROM runs r JOIN events e ON e.id = r.first_event_id"
        " WHERE r.parent_run_id = ? ORDER BY r.id LIMIT ?",
        (run_id, limit),
    )
    return [(r[0], event_from_row(r[1:])) for r in rows]


def runs_with_triggers(tx: Tx, f: RunFilter) -> list[tuple[Run, EventRecord | None]]:
    """A page of `list_runs`, each run with its first trigger event (for searching by expression)."""
    runs = read.list_runs(tx, f)
    events = {e.id: e for e in read.get_events(tx, sorted({r.event_ids[0] for r in runs if r.event_ids}))}
    return [(r, events.get(r.event_ids[0]) if r.event_ids else None) for r in runs]


def run_links(tx: Tx, run_id: str) -> RerunLinks:
    """The run this one reran (if any), its own reruns, and the runs it invoked."""
    links = RerunLinks()
    row = tx.one("SELECT origin_run_id, from_step_key, edited FROM reruns WHERE run_id = ?", (run_id,))
    if row is not None:
        links.rerun_of, links.from_step_key, links.edited = row[0], row[1], bool(row[2])
    links.reruns = [
        r[0] for r in tx.all("SELECT run_id FROM reruns WHERE origin_run_id = ? ORDER BY run_id", (run_id,))
    ]
    links.children = [
        (r[0], r[1], r[2])
        for r in tx.all("SELECT id, function_id, status FROM runs WHERE parent_run_id = ? ORDER BY id", (run_id,))
    ]
    return links
