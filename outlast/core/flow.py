"""Flow-control arithmetic: GCRA for throttle (delay) and rate limit (drop).

GCRA keeps one number per key, the theoretical arrival time (TAT). With emission interval
T = period / limit, a throttle lets `limit + burst` runs start at once and then one every T
(Inngest's semantics); a rate limit admits at most `limit` runs in a burst and then one every T.
"""

from __future__ import annotations


def throttle(tat: int | None, now: int, limit: int, period_ms: int, burst: int) -> tuple[int, int]:
    """(when the run may start, the key's new TAT). Runs are delayed in arrival order."""
    interval = period_ms / limit
    tolerance = (limit + burst - 1) * interval
    current = now if tat is None else tat
    start = max(now, int(current - tolerance))
    return start, int(max(current, start) + interval)


def rate_limit(tat: int | None, now: int, limit: int, period_ms: int) -> tuple[bool, int]:
    """(admitted?, the key's new TAT). A refused run leaves the TAT unchanged."""
    interval = period_ms / limit
    tolerance = (limit - 1) * interval
    current = now if tat is None else max(tat, now)
    if now < current - tolerance:
        return False, current
    return True, int(current + interval)
