"""Every error Outlast raises derives from one root.

    OutlastError
     +-- InvalidEventError        an event was rejected before anything was stored
     +-- FunctionConfigError      a function definition is invalid (names function and option)
     +-- PayloadTooLargeError     an event, step output or run state is over its size limit
     +-- NonRetriableError        raised by user code: fail the step or run at once
          +-- EventValidationError  a typed function's event does not follow its model
     +-- RetryAfterError          raised by user code: retry at a given time
     +-- StepError                a step spent its retries; raised inside the function, catchable
     +-- StepUsageError           a step API was misused (nested steps, too many steps, bad args)
     +-- StoreError               the store could not be reached or refused a write; nothing applied
          +-- StoreDataError      the database refused a value (retrying the same call fails again)
     +-- RerunError               a run cannot be rerun as asked; nothing was written
     +-- SubscriptionError        a realtime subscription was refused (channel, topics, since)
     +-- StepTimeoutError         a step attempt ran longer than its StepOptions timeout
     +-- SignalConflictError      another run already waits on the signal's name
     +-- InvalidSignalError       a signal to send was rejected (name, data, hold); nothing changed
     +-- RunNotFoundError         no run has this id
     +-- RunFailedError           a run awaited with `RunHandle.result` failed (`.error`)
     +-- RunCancelledError        a run awaited with `RunHandle.result` was cancelled
     +-- RunSkippedError          a run awaited with `RunHandle.result` was skipped (`.reason`)

Control flow inside a run (suspending at a sleep, ending an attempt) uses exceptions derived
from ``BaseException`` in ``outlast.core.interrupts`` so that ``except Exception`` in user code
cannot swallow them.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class OutlastError(Exception):
    """Root of every Outlast error."""


class InvalidEventError(OutlastError):
    """An event is malformed; the message names the field. Nothing was stored."""


class FunctionConfigError(OutlastError):
    """A function definition is invalid; the message names the function and the option."""


class PayloadTooLargeError(OutlastError):
    """An event, a step output or a function output is over its size limit."""


class StoreError(OutlastError):
    """The store failed (connection lost, disk error, locked too long): nothing was applied, and
    the same operation may be retried."""


class StoreDataError(StoreError):
    """The database refused a value that passed validation (a NUL character on PostgreSQL, a
    number out of range): nothing was applied, and retrying the same call fails the same way."""


class RerunError(OutlastError):
    """A rerun was refused (unknown run or step, run still active, function gone, bad output)."""


class SubscriptionError(OutlastError):
    """A realtime subscription was refused: the message names the bad channel, topic or `since`."""


class RunNotFoundError(OutlastError):
    """No run has the id asked for (it never existed, or retention removed it)."""


class RunFailedError(OutlastError):
    """The run ended failed; `error` is its stored error (`name`, `message`, `stack`, ...)."""

    def __init__(self, run_id: str, error: dict[str, object] | None) -> None:
        error = error or {}
        super().__init__(f"run {run_id} failed: {error.get('name', 'Error')}: {error.get('message', '')}")
        self.run_id = run_id
        self.error = error


class RunCancelledError(OutlastError):
    """The run was cancelled before it ended."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} was cancelled")
        self.run_id = run_id


class RunSkippedError(OutlastError):
    """The run never ran (a rate limit, an idempotency key, a paused function: `reason`)."""

    def __init__(self, run_id: str, reason: str | None) -> None:
        super().__init__(f"run {run_id} was skipped ({reason or 'no reason recorded'})")
        self.run_id = run_id
        self.reason = reason


class StepUsageError(OutlastError):
    """A step method was used in a way that can never work (nested step, step limit)."""


class NonRetriableError(OutlastError):
    """Raise to fail the current step (or the run, outside a step) without retrying."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class RetryAfterError(OutlastError):
    """Raise to retry the current step (or the run) at a given time instead of by backoff."""

    def __init__(self, message: str, retry_after: str | int | timedelta | datetime) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


class StepError(OutlastError):
    """A step failed for good (its retries are spent); catch it to run a fallback."""

    def __init__(self, message: str, *, name: str = "Error", step_id: str = "", stack: str = "") -> None:
        super().__init__(f"step {step_id!r} failed: {name}: {message}" if step_id else message)
        self.name = name
        self.message = message
        self.step_id = step_id
        self.stack = stack


class StepTimeoutError(OutlastError):
    """A step's attempt ran longer than its `StepOptions(timeout=)`; retried like any failure."""


class SignalConflictError(OutlastError):
    """A `wait_for_signal` found another run waiting on the same name (and `on_conflict="fail"`)."""


class InvalidSignalError(OutlastError):
    """A signal to send is malformed (its name, data or hold); the message names the field."""


class EventValidationError(NonRetriableError):
    """An event that arrived untyped does not follow the model of the typed trigger it matched:
    that function's run fails at once (no retry); the message names the field and the event id."""
