"""What the read API returns: runs and their step records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled", "skipped"]
StepKind = Literal["run", "sleep", "wait_for_event", "send_event", "invoke"]
ACTIVE_STATUSES = ("queued", "running")
FINAL_STATUSES = ("completed", "failed", "cancelled", "skipped")


@dataclass
class StepRecord:
    """One step of a run: its memo and its trace (attempts, timings)."""

    id: str
    key: str
    kind: str
    status: str  # completed | failed | retrying | sleeping | waiting | invoking
    attempts: int
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: int | None = None
    ended_at: int | None = None


@dataclass
class Run:
    id: str
    app_id: str
    function_id: str
    status: str
    event_ids: list[str]
    output: Any = None
    error: dict[str, Any] | None = None
    created_at: int = 0
    started_at: int | None = None
    ended_at: int | None = None
    parent_run_id: str | None = None
    skip_reason: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
