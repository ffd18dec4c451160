"""Reruns: a new run of a finished one, from the start or from one of its steps, in one transaction."""

from __future__ import annotations

from outlast.core.models import FINAL_STATUSES, RunPlan, StepWrite
from outlast.errors import RerunError
from outlast.storage.sql.commit import write_step
from outlast.storage.sql.ingest import create_run
from outlast.storage.sql.tx import Tx, marks

_COPIED = (
    "key, step_id, kind, status, attempts, output, error, started_at, ended_at, deadline, timeout_output, detail, seq"
)


def rerun(
    tx: Tx,
    plan: RunPlan,
    origin_run_id: str,
    keep_keys: list[str],
    edited: StepWrite | None,
    from_step_key: str | None,
    now: int,
) -> None:
    """Create the run `plan` describes as a rerun of `origin_run_id`: its item, the origin's final
    memo rows for `keep_keys`, the `edited` step row, and the link to the origin."""
    row = tx.one(f"SELECT status FROM runs WHERE id = ? {tx.row_lock}", (origin_run_id,))
    if row is None:
        raise RerunError(f"no run {origin_run_id!r}")
    if row[0] not in FINAL_STATUSES:
        raise RerunError(f"run {origin_run_id} is {row[0]}; cancel it or wait for it to end before rerunning it")
    create_run(tx, plan, now)
    if keep_keys:
        tx.run(
            f"INSERT INTO steps (run_id, {_COPIED}) SELECT ?, {_COPIED} FROM steps"
            f" WHERE run_id = ? AND status IN ('completed', 'failed') AND key IN ({marks(len(keep_keys))})",
            (plan.run_id, origin_run_id, *keep_keys),
        )
    if edited is not None:
        write_step(tx, plan.run_id, edited, now)
    tx.run(
        "INSERT INTO reruns (run_id, origin_run_id, from_step_key, edited, created_at) VALUES (?, ?, ?, ?, ?)",
        (plan.run_id, origin_run_id, from_step_key, int(edited is not None), now),
    )
