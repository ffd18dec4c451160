"""What the executor tells observers (the dev log, metrics, traces): typed events, no cost unless
someone listens.

Subscribers are called synchronously on the worker's event loop and must be quick; an exception
in one is logged and never reaches the run. Observations are plain (unfrozen, cheaper to make)
dataclasses: subscribers read them and never change them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("outlast")


@dataclass(slots=True, kw_only=True)
class AttemptStarted:
    run_id: str
    app_id: str
    function_id: str
    #: function-level attempt (0-based); 0 with `first_start` on the run's very first attempt
    attempt: int
    first_start: bool
    #: when the run was created (the trigger arrived), for run-level latency
    created_at: int
    started_at: int
    #: the W3C trace context its trigger event carries, if any (traces continue it)
    trace: dict[str, str] | None = None


@dataclass(slots=True, kw_only=True)
class StepEnded:
    """A step reached a state: completed, failed, retrying (an attempt failed), or pending."""

    run_id: str
    app_id: str
    function_id: str
    step_id: str
    kind: str
    status: str
    attempt: int
    duration_ms: int
    error: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class AttemptEnded:
    """An attempt ended: `completed`/`failed` (the run ended), `suspended`, `retrying` or `lost`."""

    run_id: str
    app_id: str
    function_id: str
    outcome: str
    attempt: int
    duration_ms: int
    #: the run's whole duration, when it ended
    run_duration_ms: int | None = None
    error: dict[str, Any] | None = None


@dataclass(slots=True, kw_only=True)
class EventsReceived:
    """Events sent to the engine from outside a run (the event API, `app.send`, the CLI) were stored."""

    count: int


Observation = AttemptStarted | StepEnded | AttemptEnded | EventsReceived
Subscriber = Callable[[Observation], None]
#: the W3C trace context (`traceparent`, `tracestate`) that events a run causes now carry
TraceFor = Callable[[str], dict[str, str] | None]


class Bus:
    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []
        #: set by tracing: given a run id, the trace context of its current attempt. Events the
        #: attempt sends or invokes with carry it, so the runs they start continue the trace.
        self.trace_for: TraceFor | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def __bool__(self) -> bool:
        return bool(self.subscribers)

    def emit(self, observation: Observation) -> None:
        for subscriber in self.subscribers:
            try:
                subscriber(observation)
            except Exception:
                log.exception("an observer failed")
