"""Read models for the dashboard and the read API: counts, per-function numbers, apps, rerun links.

Plain data like `outlast.core.models`, kept apart so the engine's own types stay small.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, kw_only=True)
class StatusCounts:
    """Runs per status; a count equal to `cap` means "at least that many" (counting stops there)."""

    counts: dict[str, int]
    cap: int

    def capped(self, status: str) -> bool:
        return self.counts.get(status, 0) >= self.cap


@dataclass(slots=True, kw_only=True)
class Bucket:
    """Runs created in [start, start + width) by how they stand now."""

    start: int
    completed: int = 0
    failed: int = 0
    other: int = 0


@dataclass(slots=True, kw_only=True)
class WindowStats:
    """One function's numbers over a window (the last hour or day)."""

    since: int
    runs: int = 0
    failures: int = 0
    #: run durations (start to end) of the newest finished runs in the window, in ms
    p50_ms: int | None = None
    p95_ms: int | None = None
    #: how many finished runs the percentiles are taken from (the newest, at most DURATION_SAMPLE)
    sampled: int = 0
    buckets: list[Bucket] = field(default_factory=list)
    bucket_ms: int = 0


@dataclass(slots=True, kw_only=True)
class FunctionStats:
    app_id: str
    function_id: str
    hour: WindowStats
    day: WindowStats
    #: run items due now and not leased: work waiting for a worker
    backlog: int = 0


@dataclass(slots=True, kw_only=True)
class RerunLinks:
    """How a run relates to reruns: the run it reran (and from which step), and its own reruns."""

    rerun_of: str | None = None
    from_step_key: str | None = None
    edited: bool = False
    reruns: list[str] = field(default_factory=list)
    #: runs this run invoked (their parent is this run)
    children: list[tuple[str, str, str]] = field(default_factory=list)  # (run id, function id, status)
