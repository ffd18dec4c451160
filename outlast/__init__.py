"""Outlast: durable, event-driven functions for Python."""

from outlast.client import Outlast
from outlast.context import Context, SyncContext
from outlast.errors import (
    EventValidationError,
    FunctionConfigError,
    InvalidEventError,
    NonRetriableError,
    OutlastError,
    PayloadTooLargeError,
    RetryAfterError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    RunSkippedError,
    StepError,
    StepUsageError,
    StoreError,
)
from outlast.events import Event, EventType
from outlast.function import Function
from outlast.models import Run, StepRecord
from outlast.options import (
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
)
from outlast.settings import Settings

__all__ = [
    "Batch",
    "Cancel",
    "Concurrency",
    "Context",
    "Debounce",
    "Event",
    "EventType",
    "EventValidationError",
    "Function",
    "FunctionConfigError",
    "InvalidEventError",
    "NonRetriableError",
    "Outlast",
    "OutlastError",
    "PayloadTooLargeError",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "Run",
    "RunCancelledError",
    "RunFailedError",
    "RunNotFoundError",
    "RunSkippedError",
    "Settings",
    "Singleton",
    "StepError",
    "StepRecord",
    "StepUsageError",
    "StoreError",
    "SyncContext",
    "Throttle",
    "Timeouts",
    "TriggerCron",
    "TriggerEvent",
]
