"""The rows ingest stores, built once for both ways of inserting them: a statement per row
(`Table.insert_sql`), or many rows at once (`Tx.insert_many`, which is COPY on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from outlast.core import jsonutil
from outlast.core.ids import new_ulid
from outlast.core.models import EventRecord, RunPlan, WaitSpec
from outlast.storage.sql.tx import Tx, marks

Row = tuple[Any, ...]


class Table:
    """A table's name and the columns ingest writes, in the order its rows list them."""

    def __init__(self, name: str, columns: tuple[str, ...]) -> None:
        self.name, self.columns = name, columns
        self.insert_sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks(len(columns))})"


EVENTS = Table("events", ("id", "name", "data", "user_data", "ts", "dedupe_id", "received_at", "trace"))
RUNS = Table(
    "runs",
    (
        "id",
        "app_id",
        "function_id",
        "status",
        "event_ids",
        "first_event_id",
        "created_at",
        "parent_run_id",
        "skip_reason",
        "ended_at",
        "finish_timeout_ms",
        "singleton_key",
        "has_waits",
        "has_timeouts",
    ),
)
QUEUE = Table(
    "queue",
    ("id", "app_id", "function_id", "kind", "run_id", "due_at", "payload", "ck1", "ck1_limit", "ck2", "ck2_limit"),
)
WAITS = Table(
    "waits",
    (
        "id",
        "run_id",
        "kind",
        "step_key",
        "event_name",
        "match_field",
        "match_value",
        "expression",
        "created_at",
        "expires_at",
    ),
)
DEDUPE = Table("dedupe", ("key", "expires_at"))
#: the `wait_fields` entry that says "expression waits exist for this event name"
EXPRESSION_FIELD = ""


def event_row(e: EventRecord, now: int) -> Row:
    return (
        e.id,
        e.name,
        jsonutil.dumps(e.data),
        jsonutil.dumps(e.user) if e.user else "{}",
        e.ts,
        e.dedupe_id,
        now,
        None if e.trace is None else jsonutil.dumps(e.trace),
    )


def run_row(plan: RunPlan, now: int, skip: str | None = None) -> Row:
    """A new run: queued, or skipped for `skip` (a flow-control rule)."""
    return (
        plan.run_id,
        plan.app_id,
        plan.function_id,
        "skipped" if skip else "queued",
        jsonutil.dumps(plan.event_ids),
        plan.event_ids[0],
        plan.created_at,
        plan.parent_run_id,
        skip,
        now if skip else None,
        plan.finish_timeout_ms,
        plan.singleton[0] if plan.singleton and not skip else None,
        int(bool(plan.cancel_waits)),
        int(plan.start_deadline is not None or bool(plan.finish_timeout_ms)),
    )


def queue_row(
    *,
    app_id: str,
    function_id: str | None,
    kind: str,
    run_id: str | None,
    due: int,
    payload: Any = None,
    now: int,
    concurrency: list[tuple[str, int]] | None = None,
    item_id: str | None = None,
) -> Row:
    """A queue row; a new item's id is a ULID of `now`, the caller's time."""
    (ck1, lim1), (ck2, lim2) = [*(concurrency or []), (None, None), (None, None)][:2]
    return (
        item_id or new_ulid(now),
        app_id,
        function_id,
        kind,
        run_id,
        due,
        None if payload is None else jsonutil.dumps(payload),
        ck1,
        lim1,
        ck2,
        lim2,
    )


def wait_row(run_id: str, w: WaitSpec, now: int) -> Row:
    return (
        new_ulid(now),
        run_id,
        w.kind,
        w.step_key,
        w.event_name,
        w.match_field,
        w.match_value,
        w.expression,
        now,
        w.expires_at,
    )


def wait_field(w: WaitSpec) -> tuple[str, str]:
    """The `wait_fields` entry that lets events named `w.event_name` find the wait."""
    return w.event_name, EXPRESSION_FIELD if w.match_field is None else w.match_field


def insert_rows(tx: Tx, rows: Sequence[tuple[Table, Row]]) -> None:
    """Insert rows of several tables (none conflicting with a stored row): on PostgreSQL in one
    statement, a `WITH` of one INSERT per row (one round trip; all or none, as a statement);
    on SQLite, where a statement is no round trip, one each."""
    if tx.dialect != "postgresql" or len(rows) < 2:
        for table, row in rows:
            tx.run(table.insert_sql, row)
        return
    parts = ", ".join(f"i{n} AS ({table.insert_sql})" for n, (table, _) in enumerate(rows))
    tx.run(f"WITH {parts} SELECT 1", [value for _, row in rows for value in row])


def start_rows(plan: RunPlan, due: int, now: int, item_id: str | None = None) -> list[tuple[Table, Row]]:
    """Besides the run's own row: the items and waits of a run that starts (its item due at `due`)."""
    rows = [
        (
            QUEUE,
            queue_row(
                app_id=plan.app_id,
                function_id=plan.function_id,
                kind="run",
                run_id=plan.run_id,
                due=due,
                now=now,
                concurrency=plan.concurrency,
                item_id=item_id,
            ),
        )
    ]
    rows += [(WAITS, wait_row(plan.run_id, wait, now)) for wait in plan.cancel_waits]
    if plan.start_deadline is not None:
        rows.append(
            (
                QUEUE,
                queue_row(
                    app_id=plan.app_id,
                    function_id=plan.function_id,
                    kind="timeout",
                    run_id=plan.run_id,
                    due=plan.start_deadline,
                    now=now,
                    payload={"type": "start"},
                ),
            )
        )
    return rows
