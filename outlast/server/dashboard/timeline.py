"""The run page's waterfall: where each step's bar starts and how long it is, as percentages of
the run's span (creation to end, or to now, or to the latest pending deadline)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outlast.core.models import Run, StepRecord

PENDING = ("sleeping", "waiting", "invoking", "retrying")


@dataclass(slots=True, kw_only=True)
class Bar:
    step: StepRecord
    left: float
    width: float
    #: a pending step's bar reaches to its deadline (drawn hatched)
    pending: bool
    #: a memo row copied from the run this one reran (it ran before this run existed)
    copied: bool
    duration_ms: int | None
    child_run: str | None = None


@dataclass(slots=True, kw_only=True)
class Timeline:
    start: int
    end: int
    queued: Bar | None
    bars: list[Bar]
    ticks: list[tuple[float, int]]

    @property
    def span(self) -> int:
        return self.end - self.start


def timeline(run: Run, now: int, children: dict[str, str] | None = None) -> Timeline:
    start = run.created_at
    ends = [run.ended_at or now]
    ends += [s.deadline for s in run.steps if s.status in PENDING and s.deadline]
    end = max([*ends, start + 1])
    span = end - start

    def place(a: int, b: int) -> tuple[float, float]:
        left = max(0.0, min(100.0, (a - start) * 100 / span))
        return left, max(0.4, min(100.0 - left, (b - a) * 100 / span))

    bars = []
    for step in run.steps:
        begun = step.started_at or start
        copied = step.ended_at is not None and step.ended_at < start
        pending = step.status in PENDING
        finish = step.ended_at or (step.deadline if pending and step.deadline else now)
        left, width = (0.0, 0.0) if copied else place(begun, finish)
        took = step.ended_at - step.started_at if step.ended_at is not None and step.started_at else None
        bars.append(
            Bar(
                step=step,
                left=left,
                width=width,
                pending=pending,
                copied=copied,
                duration_ms=took,
                child_run=(children or {}).get(step.key),
            )
        )
    queued = None
    if run.started_at and run.started_at > start:
        left, width = place(start, run.started_at)
        queued = Bar(
            step=StepRecord(id="queued", key="", kind="queue", status="queued", attempts=0),
            left=left,
            width=width,
            pending=False,
            copied=False,
            duration_ms=run.started_at - start,
        )
    return Timeline(start=start, end=end, queued=queued, bars=bars, ticks=_ticks(span))


def _ticks(span: int) -> list[tuple[float, int]]:
    """Four evenly spaced marks: (percent, ms from the start)."""
    return [(i * 25.0, span * i // 4) for i in range(5)]


def invoked_children(child_events: list[tuple[str, Any]]) -> dict[str, str]:
    """step key -> child run id, from each child's trigger event (`data._inngest.correlation_id` is
    `<parent run id>.<step key>`)."""
    out = {}
    for child_id, payload in child_events:
        correlation = ((payload or {}).get("_inngest") or {}).get("correlation_id")
        if isinstance(correlation, str) and "." in correlation:
            out[correlation.split(".", 1)[1]] = child_id
    return out
