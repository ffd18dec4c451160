"""Work items of one run as read APIs show them (Inngest's `GET /v1/runs/{id}/jobs`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueJob:
    """A queue item of a run: its own `run` item, or a start/finish `timeout` item."""

    id: str
    kind: str
    #: when it is due; for a leased item, when its lease runs out
    due_at: int
    leased: bool
    #: how many items of the same app are due before it
    position: int
    #: for a timeout item, which timeout ("start" or "finish")
    timeout: str | None = None
