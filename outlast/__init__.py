"""Outlast: durable, event-driven functions for Python."""

from outlast.client import Outlast
from outlast.context import Context, SyncContext
from outlast.errors import (
    FunctionConfigError,
    InvalidEventError,
    InvalidSignalError,
    NonRetriableError,
    OutlastError,
    PayloadTooLargeError,
    RetryAfterError,
    SignalConflictError,
    StepError,
    StepTimeoutError,
    StepUsageError,
    StoreError,
    SubscriptionError,
)
from outlast.events import Event
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

__all__ = [
    "Backoff",
    "Batch",
    "Cancel",
    "Concurrency",
    "Context",
    "Debounce",
    "Event",
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
