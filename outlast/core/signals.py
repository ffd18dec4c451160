"""Signals: a name one run waits on at a time, and the checks every entry point applies to one
sent (from Python, over HTTP, from the CLI)."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.durations import to_ms
from outlast.core.events import name_problem
from outlast.errors import InvalidSignalError

#: how long a signal nobody waits for may be held for the first wait that begins
MAX_HOLD_MS = 7 * 24 * 3600 * 1000
ON_CONFLICT = ("fail", "replace")
CONFLICT_ERROR = "SignalConflictError"


def checked_signal(signal: Any, data: Any, hold: Any, *, max_bytes: int) -> tuple[dict[str, Any], int | None]:
    """A signal to send as the store takes it (its data, `{}` when None; its hold in ms), or
    InvalidSignalError naming the field that is wrong."""
    try:
        hold_ms = None if hold is None else to_ms(hold, what="hold")
    except ValueError as exc:
        raise InvalidSignalError(str(exc)) from None
    problem = signal_problem(signal) or data_problem(data, max_bytes=max_bytes) or hold_problem(hold_ms)
    if problem is not None:
        raise InvalidSignalError(problem)
    return dict(data or {}), hold_ms


def signal_problem(signal: Any) -> str | None:
    """Why `signal` cannot be a signal name, or None (the rules of event names)."""
    problem = name_problem(signal, what="the signal name")
    return None if problem is None else f"signal: {problem}"


def data_problem(data: Any, *, max_bytes: int) -> str | None:
    """Why `data` cannot be a signal's data (a JSON object within the event size limit), or None."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"data: expected a JSON object, got {type(data).__name__}"
    try:
        size = len(jsonutil.dumps(data).encode())
    except jsonutil.NotJSONError as exc:
        return f"data: {exc}"
    if size > max_bytes:
        return f"data: {size} bytes, the limit is {max_bytes} bytes"
    return None


def hold_problem(hold_ms: int | None) -> str | None:
    if hold_ms is not None and not 0 < hold_ms <= MAX_HOLD_MS:
        return "hold: must be more than 0 and at most 7 days"
    return None


def conflict_error(signal: str) -> dict[str, str]:
    return {
        "name": CONFLICT_ERROR,
        "message": f"another run already waits for signal {signal!r} (on_conflict='replace' takes it over)",
    }
