"""Runs that start already leased to the code running them: a Durable Endpoint's request runs
its run's first attempt itself (`outlast.runtime.endpoint_runs`). The run, its trigger event
and its leased item are made in one transaction, so no worker can claim the run (and call the
app again) while the request still runs it; if the request never ends the attempt, the lease
expires and the run is resumed as any abandoned attempt is."""

from __future__ import annotations

from outlast.core.models import EventRecord, RunPlan
from outlast.storage.base import Planner
from outlast.storage.sql.ingest import create_run, ingest
from outlast.storage.sql.tx import Tx


def start_held_run(
    tx: Tx, planner: Planner, plan: RunPlan, event: EventRecord, *, token: str, owner: str, until: int, now: int
) -> str | None:
    """Store `event` and start the run `plan` describes (running, its item leased with `token`
    until `until`); return the item's id. None, and nothing written, when a run with that id
    exists; None with the run stored as skipped when its function is paused."""
    if tx.one("SELECT 1 FROM runs WHERE id = ?", (plan.run_id,)) is not None:
        return None
    ingest(tx, planner, [event], now)
    create_run(tx, plan, now)
    row = tx.one("SELECT id FROM queue WHERE run_id = ? AND kind = 'run'", (plan.run_id,))
    if row is None:
        return None
    tx.run("UPDATE queue SET lease_token = ?, owner = ?, due_at = ? WHERE id = ?", (token, owner, until, row[0]))
    tx.run("UPDATE runs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'", (now, plan.run_id))
    return str(row[0])
