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
