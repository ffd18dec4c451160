"""Function option types: triggers and flow control (names follow Inngest's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from outlast.core.durations import Duration
from outlast.events import EventType


@dataclass(frozen=True)
class TriggerEvent:
    event: str | EventType[Any]
    if_: str | None = None


@dataclass(frozen=True)
class TriggerCron:
    cron: str
    jitter: Duration | None = None


@dataclass(frozen=True)
class Concurrency:
    limit: int
    key: str | None = None
    scope: Literal["fn", "app", "account"] = "fn"


@dataclass(frozen=True)
class Throttle:
    limit: int
    period: Duration
    key: str | None = None
    burst: int = 1


@dataclass(frozen=True)
class RateLimit:
    limit: int
    period: Duration
    key: str | None = None


@dataclass(frozen=True)
class Debounce:
    period: Duration
    key: str | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class Batch:
    max_size: int
    timeout: Duration
    key: str | None = None
    if_: str | None = None


@dataclass(frozen=True)
class Priority:
    run: str


@dataclass(frozen=True)
class Cancel:
    event: str | EventType[Any]
    match: str | None = None
    if_: str | None = None
    timeout: Duration | None = None


@dataclass(frozen=True)
class Timeouts:
    start: Duration | None = None
    finish: Duration | None = None


@dataclass(frozen=True)
class Singleton:
    key: str | None = None
    mode: Literal["skip", "cancel"] = "skip"


@dataclass(frozen=True)
class WaitFor:
    """One wait of `step.wait_for_any` / `step.wait_for_all`: an event name or `EventType` (its
    match then comes back typed), and `match` or `if_` as in `step.wait_for_event`."""

    event: str | EventType[Any]
    match: str | None = None
    if_: str | None = None


@dataclass(frozen=True)
class Backoff:
    """An exponential retry backoff: `initial`, then `factor` times more before each retry, at
    most `max`, plus up to 10 % with `jitter`. A function option (`backoff=`) and a step's."""

    initial: Duration = "1s"
    factor: float = 2.0
    max: Duration = "10m"
    jitter: bool = True


@dataclass(frozen=True)
class StepOptions:
    """`step.run`'s first argument, for a step with its own policy: `retries` (0..20) instead of
    the function's, a wall-clock `timeout` per attempt (an attempt over it fails with
    StepTimeoutError and is retried like any failure), and its own `backoff`."""

    id: str
    retries: int | None = None
    timeout: Duration | None = None
    backoff: Backoff | None = None
