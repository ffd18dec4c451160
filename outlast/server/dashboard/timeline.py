"""The run page's waterfall: where each step's bar starts and how long it is, as percentages of
the run's span (creation to end, or to now, or to the latest pending deadline).

A long run's trace is paged (`STEPS_PER_PAGE` steps a page, with a summary of every step's status
above it), so a run of 10,000 steps costs a page of bars, not 10,000 of them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from outlast.core.keys import step_key
from outlast.core.models import Run, StepRecord

PENDING = ("sleeping", "waiting", "invoking", "retrying")
STEPS_PER_PAGE = 200


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
    #: which call of its step id this step is: 1 for the first `s`, 2 for the first repeat (`s #2`)
    occurrence: int = 1

    @property
    def label(self) -> str:
        return _label(self.step.id, self.occurrence)


@dataclass(slots=True, kw_only=True)
class TracePage:
    """Which of a run's steps the page shows: steps `first` to `first + len(bars)` of `total`."""

    number: int
    pages: int
    first: int
    total: int
    size: int = STEPS_PER_PAGE
    #: how many steps of the whole run are in each status, most first
    statuses: list[tuple[str, int]] = field(default_factory=list)
    #: the page of the run's first failed step (None: no step failed)
    failed_page: int | None = None


@dataclass(slots=True, kw_only=True)
class Timeline:
    start: int
    end: int
    queued: Bar | None
    bars: list[Bar]
    ticks: list[tuple[float, int]]
    page: TracePage

    @property
    def span(self) -> int:
        return self.end - self.start


class BadPageError(ValueError):
    """A trace page that does not exist; the message names the parameter and the range."""


def trace_page(run: Run, requested: str | None) -> TracePage:
    """The trace page `requested` (`?steps_page=`, 1-based; None: the first)."""
    total = len(run.steps)
    pages = max(1, -(-total // STEPS_PER_PAGE))
    try:
        number = 1 if requested in (None, "") else int(str(requested))
    except ValueError:
        raise BadPageError(f"steps_page: expected a page number from 1 to {pages}, got {requested!r}") from None
    if not 1 <= number <= pages:
        raise BadPageError(f"steps_page: this run's trace has {pages} page(s), got {number}")
    failed = next((i for i, s in enumerate(run.steps) if s.status == "failed"), None)
    return TracePage(
        number=number,
        pages=pages,
        first=(number - 1) * STEPS_PER_PAGE,
        total=total,
        statuses=Counter(s.status for s in run.steps).most_common(),
        failed_page=None if failed is None else failed // STEPS_PER_PAGE + 1,
    )


def timeline(run: Run, now: int, children: dict[str, str] | None = None, *, page: TracePage | None = None) -> Timeline:
    page = page or trace_page(run, None)
    start = run.created_at
    ends = [run.ended_at or now]
    ends += [s.deadline for s in run.steps if s.status in PENDING and s.deadline]
    end = max([*ends, start + 1])
    span = end - start

    def place(a: int, b: int) -> tuple[float, float]:
        left = max(0.0, min(100.0, (a - start) * 100 / span))
        return round(left, 3), round(max(0.4, min(100.0 - left, (b - a) * 100 / span)), 3)

    shown = slice(page.first, page.first + STEPS_PER_PAGE)
    bars = []
    for step, occurrence in zip(run.steps[shown], occurrences(run.steps)[shown], strict=True):
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
                occurrence=occurrence,
            )
        )
    return Timeline(start=start, end=end, queued=_queued(run, place), bars=bars, ticks=_ticks(span), page=page)


def _queued(run: Run, place: Callable[[int, int], tuple[float, float]]) -> Bar | None:
    """The bar of the time the run waited for a worker, if it did."""
    if not run.started_at or run.started_at <= run.created_at:
        return None
    left, width = place(run.created_at, run.started_at)
    return Bar(
        step=StepRecord(id="queued", key="", kind="queue", status="queued", attempts=0),
        left=left,
        width=width,
        pending=False,
        copied=False,
        duration_ms=run.started_at - run.created_at,
    )


def occurrences(steps: list[StepRecord]) -> list[int]:
    """Each step's call number among the steps with its id (1, 2, …): read from its key, hashed as
    Inngest hashes the n-th repeat (`step_key(id, n)`), or, for a key hashed otherwise, the order
    the steps were written in."""
    counts = Counter(s.id for s in steps)
    keys: dict[str, dict[str, int]] = {}
    seen: Counter[str] = Counter()
    out = []
    for s in steps:
        seen[s.id] += 1
        if counts[s.id] == 1:
            out.append(1)
            continue
        if s.id not in keys:
            keys[s.id] = {step_key(s.id, n): n + 1 for n in range(counts[s.id])}
        out.append(keys[s.id].get(s.key, seen[s.id]))
    return out


def step_label(steps: list[StepRecord], key: str) -> str | None:
    """How the trace names the step with `key` ("s", or "s #2" for the first repeat of "s")."""
    for step, occurrence in zip(steps, occurrences(steps), strict=True):
        if step.key == key:
            return _label(step.id, occurrence)
    return None


def _label(step_id: str, occurrence: int) -> str:
    return step_id if occurrence == 1 else f"{step_id} #{occurrence}"


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
