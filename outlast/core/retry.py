"""The one retry decision, for steps and for whole attempts, whichever driver reported the error.

The local driver describes an exception as an `ErrorInfo` (`NonRetriableError` → `no_retry`,
`RetryAfterError` → `retry_at`); the HTTP driver builds the same from an SDK's response
(`X-Inngest-No-Retry`, `Retry-After`). `next_try` then says when to try again, or that the
failure is final.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: delay before retry n (n = 0 is the delay after the first failed attempt), in seconds
BACKOFF_TABLE_S = (15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
MIN_RETRY_AFTER_MS = 1_000
MAX_RETRY_AFTER_MS = 24 * 3_600_000
MAX_JITTER_MS = 30_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    """A failure as drivers report it: what it was, and what it asks of the retry decision."""

    name: str
    message: str
    stack: str = ""
    #: fail at once (NonRetriableError, `X-Inngest-No-Retry: true`)
    no_retry: bool = False
    #: retry at this time, in ms (RetryAfterError, `Retry-After`), instead of by backoff
    retry_at: int | None = None
    #: the SDK's own error object when an app sent one: stored whole, as Inngest stores it, so
    #: what the SDK put there (inngest-py's `code`, an explicit `"stack": null`) reaches the run's
    #: output, the memo and `inngest/function.failed`
    sent: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    #: the HTTP status of the app's error answer that carried it (a function-level error)
    status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The stored and emitted form (Inngest's error shape)."""
        if self.sent is not None:
            return {**self.sent, "name": self.name, "message": self.message}
        out = {"name": self.name, "message": self.message}
        if self.stack:
            out["stack"] = self.stack
        return out

    def event_json(self) -> dict[str, Any] | None:
        """The error in `inngest/function.failed` when it differs from the stored one: Inngest
        describes an app's error answer by its status, beside the SDK's name, message and stack."""
        if self.status is None:
            return None
        out = {"error": f"invalid status code: {self.status}", "name": self.name, "message": self.message}
        if self.sent is not None and "stack" in self.sent:
            out["stack"] = self.sent["stack"]
        elif self.stack:
            out["stack"] = self.stack
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffRule:
    """An exponential backoff (`outlast.Backoff`): `initial_ms * factor ** (n - 1)` before retry n,
    at most `max_ms`, with up to 10 % more when `jitter`."""

    initial_ms: int
    factor: float
    max_ms: int
    jitter: bool = True

    def delay_ms(self, failed_attempts: int, rng: random.Random) -> int:
        base = min(self.initial_ms * self.factor ** min(failed_attempts - 1, 64), self.max_ms)
        return int(base + (rng.uniform(0, base * 0.1) if self.jitter else 0))


def backoff_rule(*, initial: Any, factor: Any, max: Any, jitter: Any) -> BackoffRule:
    """A backoff from `outlast.Backoff`'s fields, or ValueError naming the field that is wrong."""
    from outlast.core.durations import to_ms

    initial_ms, max_ms = to_ms(initial, what="initial"), to_ms(max, what="max")
    if initial_ms <= 0:
        raise ValueError("initial: must be more than 0")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 <= factor <= 100:
        raise ValueError(f"factor: expected a number from 1 to 100, got {factor!r}")
    if max_ms < initial_ms:
        raise ValueError("max: must be at least initial")
    if not isinstance(jitter, bool):
        raise ValueError(f"jitter: expected True or False, got {jitter!r}")
    return BackoffRule(initial_ms=initial_ms, factor=float(factor), max_ms=max_ms, jitter=jitter)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int
    #: multiplies backoff delays (`outlast dev` and tests shorten them)
    backoff_scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random)
    #: the function's or the step's own backoff; None: Inngest's table
    backoff: BackoffRule | None = None


def next_try(error: ErrorInfo, *, failed_attempts: int, policy: RetryPolicy, now_ms: int) -> int | None:
    """When to try again after `failed_attempts` failures (>= 1), or None if this failure is final."""
    if error.no_retry or failed_attempts >= policy.max_attempts:
        return None
    if error.retry_at is not None:
        return clamp_retry_at(error.retry_at, now_ms)
    if policy.backoff is not None:
        return now_ms + max(1, int(policy.backoff.delay_ms(failed_attempts, policy.rng) * policy.backoff_scale))
    return now_ms + backoff_ms(failed_attempts, scale=policy.backoff_scale, rng=policy.rng)


def backoff_ms(failed_attempts: int, *, scale: float = 1.0, rng: random.Random) -> int:
    """Inngest's table value for `failed_attempts` (>= 1) plus up to 10 % jitter (at most 30 s)."""
    base = backoff_table_ms(failed_attempts)
    jitter = rng.uniform(0, min(base * 0.1, MAX_JITTER_MS))
    return max(1, int((base + jitter) * scale))


def backoff_table_ms(failed_attempts: int) -> int:
    """Inngest's table value for `failed_attempts` (>= 1), without jitter or scale."""
    return BACKOFF_TABLE_S[min(failed_attempts - 1, len(BACKOFF_TABLE_S) - 1)] * 1000


def clamp_retry_at(at_ms: int, now_ms: int) -> int:
    """A requested retry time, kept between 1 s and 24 h from now (as Inngest does)."""
    return min(max(at_ms, now_ms + MIN_RETRY_AFTER_MS), now_ms + MAX_RETRY_AFTER_MS)


@dataclass(frozen=True, slots=True, kw_only=True)
class StepPolicy:
    """A step's own policy (`outlast.StepOptions`): attempts, a wall-clock limit per attempt, backoff."""

    max_attempts: int | None = None
    timeout_ms: int | None = None
    backoff: BackoffRule | None = None

    def describe(self) -> dict[str, Any] | None:
        """The policy as the trace keeps it (None when the step has none of its own)."""
        if self.max_attempts is None and self.timeout_ms is None and self.backoff is None:
            return None
        backoff = None
        if self.backoff is not None:
            b = self.backoff
            backoff = {"initial_ms": b.initial_ms, "factor": b.factor, "max_ms": b.max_ms, "jitter": b.jitter}
        retries = None if self.max_attempts is None else self.max_attempts - 1
        return {"retries": retries, "timeout_ms": self.timeout_ms, "backoff": backoff}
