"""Outlast: durable, event-driven functions for Python."""

from typing import TYPE_CHECKING, Any

from outlast.client import Outlast
from outlast.context import Context, SyncContext
from outlast.errors import (
    EventValidationError,
    FunctionConfigError,
    InvalidEventError,
    InvalidSignalError,
    NonRetriableError,
    OutlastError,
    PayloadTooLargeError,
    RetryAfterError,
    RunCancelledError,
    RunFailedError,
    RunNotFoundError,
    RunSkippedError,
    SignalConflictError,
    StepError,
    StepTimeoutError,
    StepUsageError,
    StoreError,
    SubscriptionError,
)
from outlast.events import Event, EventType
from outlast.function import Function
from outlast.models import Run, StepRecord
from outlast.options import (
    Backoff,
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    StepOptions,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
    WaitFor,
)
from outlast.settings import Settings

if TYPE_CHECKING:
    from outlast.runtime.run_results import RunHandle


def __getattr__(name: str) -> Any:
    """`RunHandle` is imported on first use: `import outlast` loads no runtime (nor asyncio)."""
    if name == "RunHandle":
        from outlast.runtime.run_results import RunHandle

        return RunHandle
    raise AttributeError(f"module 'outlast' has no attribute {name!r}")


__all__ = [
    "Backoff",
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
    "InvalidSignalError",
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
    "RunHandle",
    "RunNotFoundError",
    "RunSkippedError",
    "Settings",
    "SignalConflictError",
    "Singleton",
    "StepError",
    "StepOptions",
    "StepRecord",
    "StepTimeoutError",
    "StepUsageError",
    "StoreError",
    "SubscriptionError",
    "SyncContext",
    "Throttle",
    "Timeouts",
    "TriggerCron",
    "TriggerEvent",
    "WaitFor",
]
