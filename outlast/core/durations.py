"""Parse durations ("500ms", "1h30m", "2d", timedelta, int milliseconds), for users and for the
Inngest SDKs alike (Go's units, `ns` to `h`, plus days and weeks; fractions such as `1.5h`)."""

from __future__ import annotations

import functools
import re
from datetime import timedelta

_UNITS_MS = {
    "ns": 1e-6,
    "us": 1e-3,
    "µs": 1e-3,
    "μs": 1e-3,
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")

Duration = str | int | float | timedelta


def to_ms(value: Duration, *, what: str = "duration") -> int:
    """Return the duration in whole milliseconds; raise ValueError naming `what` if invalid.

    An int or float is milliseconds (Inngest's convention); a string is a sequence of
    number+unit parts such as "1h30m".
    """
    if isinstance(value, timedelta):
        ms = int(value.total_seconds() * 1000)
    elif isinstance(value, bool):
        raise ValueError(f"{what}: expected a duration, got a bool")
    elif isinstance(value, (int, float)):
        ms = int(value)
    elif isinstance(value, str):
        ms = _parse(value.strip(), what)
    else:
        raise ValueError(f"{what}: expected a duration string, int ms or timedelta, got {type(value).__name__}")
    if ms < 0:
        raise ValueError(f"{what}: must not be negative, got {value!r}")
    return ms


@functools.lru_cache(maxsize=1024)  # steps name the same few durations over and over
def _parse(text: str, what: str) -> int:
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{what}: invalid duration {text!r} (use e.g. '500ms', '10s', '1h30m', '2d', '1w')")
    return int(total)


def format_ms(ms: int) -> str:
    """Inverse of `to_ms` for display and Inngest configs: the largest unit dividing evenly."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
