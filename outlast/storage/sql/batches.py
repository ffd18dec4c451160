"""Requests that group commit runs together, one statement for many.

A busy worker's group holds dozens of checkpoints (one step's result each) and run ends. Run
one by one they cost a statement or three each, which on PostgreSQL is most of a worker's CPU
per run; together they are a few multi-row statements. Requests of one group are all pending at
once, so running these before the others is as valid an order as the one they arrived in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from outlast.core.models import Commit, CommitResult
from outlast.storage.base import Planner
from outlast.storage.sql import commit
from outlast.storage.sql.tx import Tx


@dataclass(frozen=True, slots=True)
class CheckpointRequest:
    """A checkpoint (`commit.is_checkpoint`) as a store request: runs alone when called, or with
    others in `run_together`."""

    commit: Commit

    def __call__(self, tx: Tx) -> CommitResult:
        return commit.checkpoint(tx, self.commit)


@dataclass(frozen=True, slots=True)
class FinishRequest:
    """A run's plain end (`commit.is_plain_finish`) as a store request, like `CheckpointRequest`."""

    commit: Commit
    planner: Planner

    def __call__(self, tx: Tx) -> CommitResult:
        return commit.commit(tx, self.planner, self.commit)


def run_together(tx: Tx, requests: Sequence[object]) -> dict[int, Any]:
    """Run the group's checkpoints in one statement, and its run ends in a few; their results by
    position in `requests`. A kind with one request, and a second request of a run, are left to
    run on their own."""
    checkpoints: dict[int, Commit] = {}
    finishes: dict[int, Commit] = {}
    runs: set[str] = set()
    planner: Planner | None = None
    for i, request in enumerate(requests):
        if isinstance(request, CheckpointRequest | FinishRequest) and request.commit.run_id not in runs:
            runs.add(request.commit.run_id)
            if isinstance(request, CheckpointRequest):
                checkpoints[i] = request.commit
            else:
                finishes[i] = request.commit
                planner = request.planner
    results: dict[int, Any] = {}
    if len(checkpoints) > 1:
        results.update(zip(checkpoints, commit.checkpoints(tx, list(checkpoints.values())), strict=True))
    if len(finishes) > 1 and planner is not None:
        results.update(zip(finishes, commit.finishes(tx, planner, list(finishes.values())), strict=True))
    return results
