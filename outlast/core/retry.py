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
class RetryPolicy:
    max_attempts: int
    #: multiplies backoff delays (`outlast dev` and tests shorten them)
    backoff_scale: float = 1.0
    rng: random.Random = field(default_factory=random.Random)


def next_try(error: ErrorInfo, *, failed_attempts: int, policy: RetryPolicy, now_ms: int) -> int | None:
    """When to try again after `failed_attempts` failures (>= 1), or None if this failure is final."""
    if error.no_retry or failed_attempts >= policy.max_attempts:
        return None
    if error.retry_at is not None:
        return clamp_retry_at(error.retry_at, now_ms)
    return now_ms + backoff_ms(failed_attempts, scale=policy.backoff_scale, rng=policy.rng)


def backoff_ms(failed_attempts: int, *, scale: float = 1.0, rng: random.Random) -> int:
    """Inngest's table value for `failed_attempts` (>= 1) plus up to 10 % jitter (at most 30 s)."""
    base = BACKOFF_TABLE_S[min(failed_attempts - 1, len(BACKOFF_TABLE_S) - 1)] * 1000
    jitter = rng.uniform(0, min(base * 0.1, MAX_JITTER_MS))
    return max(1, int((base + jitter) * scale))


def clamp_retry_at(at_ms: int, now_ms: int) -> int:
    """A requested retry time, kept between 1 s and 24 h from now (as Inngest does)."""
    return min(max(at_ms, now_ms + MIN_RETRY_AFTER_MS), now_ms + MAX_RETRY_AFTER_MS)
