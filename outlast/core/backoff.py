"""Retry delays: Inngest's backoff table plus jitter, and Retry-After handling."""

from __future__ import annotations

import random
from datetime import datetime

from outlast.core.durations import to_ms

#: delay before retry n (n = 0 is the delay after the first failed attempt), in seconds
TABLE_S = (15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
MIN_RETRY_AFTER_MS = 1_000
MAX_RETRY_AFTER_MS = 24 * 3_600_000


def backoff_ms(failed_attempts: int, *, scale: float = 1.0, rng: random.Random | None = None) -> int:
    """Delay after `failed_attempts` failures (>= 1): table value plus up to 10 % jitter (≤ 30 s)."""
    base = TABLE_S[min(failed_attempts - 1, len(TABLE_S) - 1)] * 1000
    jitter = (rng or random).uniform(0, min(base * 0.1, 30_000))
    return max(1, int((base + jitter) * scale))


def retry_after_ms(value: object, now_ms: int) -> int:
    """Absolute time (ms) for a RetryAfterError value, clamped to 1 s .. 24 h from now."""
    at = int(value.timestamp() * 1000) if isinstance(value, datetime) \
        else now_ms + to_ms(value, what="retry_after")  # type: ignore[arg-type]
    return min(max(at, now_ms + MIN_RETRY_AFTER_MS), now_ms + MAX_RETRY_AFTER_MS)
