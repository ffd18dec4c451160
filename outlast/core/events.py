"""Event names the engine knows, and the validation every entry point applies to an event."""

from __future__ import annotations

import functools
import re
from typing import Any

from outlast.core import jsonutil
from outlast.core.models import EventRecord
from outlast.errors import InvalidEventError, PayloadTooLargeError

MAX_NAME_LENGTH = 512
#: the last millisecond of year 9999: every backend stores it, every date library reads it
MAX_TS = 253_402_300_799_999
#: an event's `ts` may be this far ahead: its runs start then (a delayed start)
MAX_DELAY_MS = 366 * 86_400_000
SYSTEM_PREFIX = "inngest/"
FUNCTION_FAILED = "inngest/function.failed"
FUNCTION_FINISHED = "inngest/function.finished"
FUNCTION_CANCELLED = "inngest/function.cancelled"
FUNCTION_INVOKED = "inngest/function.invoked"
SCHEDULED_TIMER = "inngest/scheduled.timer"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_event(
    raw: Any,
    *,
    internal_id: str,
    now_ms: int,
    max_bytes: int,
    index: int = 0,
    allow_system: bool = False,
) -> EventRecord:
    """Check an event (a JSON object, or anything with `to_dict()`) and return its record, or raise
    InvalidEventError naming the field.

    `ts` is kept as given (0 is the epoch, not "now"); a missing or null `ts` is `now_ms`.
    """
    if not isinstance(raw, dict) and callable(getattr(raw, "to_dict", None)):
        raw = raw.to_dict()
    if not isinstance(raw, dict):
        raise InvalidEventError(f"{_where(index)}: expected an Event or a JSON object, got {type(raw).__name__}")
    name = raw.get("name")
    problem = _event_name_problem(name) if isinstance(name, str) else name_problem(name, what="an event name")
    if problem is not None or not isinstance(name, str):
        raise InvalidEventError(f"{_where(index)}.name: {problem}")
    if name.lower().startswith(SYSTEM_PREFIX) and not allow_system:
        raise InvalidEventError(f"{_where(index)}.name: names starting with 'inngest/' are reserved ({name!r})")
    data = _object(raw.get("data"), index, "data")
    user = _object(raw.get("user"), index, "user")
    dedupe_id = raw.get("id")
    if dedupe_id is not None and not isinstance(dedupe_id, str):
        raise InvalidEventError(f"{_where(index)}.id: must be a string, got {type(dedupe_id).__name__}")
    if dedupe_id and (problem := text_problem(dedupe_id)) is not None:
        raise InvalidEventError(f"{_where(index)}.id: {problem}")
    ts = raw.get("ts")
    if ts is None:
        ts = now_ms
    if not isinstance(ts, int) or isinstance(ts, bool) or not 0 <= ts <= MAX_TS:
        raise InvalidEventError(
            f"{_where(index)}.ts: must be integer milliseconds since the epoch (0 to {MAX_TS}, "
            f"the end of year 9999), got {ts!r}"
        )
    if ts > now_ms + MAX_DELAY_MS:
        raise InvalidEventError(
            f"{_where(index)}.ts: a future ts delays the runs the event starts, at most one year ahead;"
            f" {ts} is {(ts - now_ms) // 86_400_000} days ahead"
        )
    record = EventRecord(id=internal_id, name=name, data=data, user=user, ts=ts, dedupe_id=dedupe_id or None)
    _check_size(record, index, max_bytes)
    return record


@functools.lru_cache(maxsize=1024)
def _event_name_problem(name: str) -> str | None:
    """`name_problem` of an event name, remembered: a bulk send repeats a few names many times."""
    return name_problem(name, what="an event name")


def name_problem(name: Any, *, what: str) -> str | None:
    """Why `name` cannot be an event name (or a step id), or None: a non-empty string of at most
    MAX_NAME_LENGTH characters, without control characters (a newline, a NUL), valid Unicode."""
    if name is None:
        return f"{what} is required"
    if not isinstance(name, str):
        return f"{what} must be a string, got {type(name).__name__}"
    if not name.strip():
        return f"{what} must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"{len(name)} characters, the limit is {MAX_NAME_LENGTH}"
    bad = _CONTROL.search(name)
    if bad is not None:
        return f"{what} must not contain control characters, found {bad.group()!r} at offset {bad.start()}"
    return text_problem(name)


def start_time(event: EventRecord, now_ms: int) -> int:
    """When the runs an event triggers start: its `ts` when that is ahead (at most a year), else now."""
    return event.ts if now_ms < event.ts <= now_ms + MAX_DELAY_MS else now_ms


def text_problem(text: str) -> str | None:
    """Why a string cannot be stored as text on every backend (PostgreSQL refuses NUL), or None."""
    if "\x00" in text:
        return f"must not contain a NUL character (found at offset {text.index(chr(0))})"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode text (a lone surrogate at offset {exc.start})"
    return None


def _object(value: Any, index: int, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEventError(f"{_where(index)}.{field}: must be a JSON object, got {type(value).__name__}")
    return value


def _where(index: int) -> str:
    """How an error names the event (made only for an error: a bulk send validates many)."""
    return f"event[{index}]"


def _check_size(record: EventRecord, index: int, max_bytes: int) -> None:
    try:
        size = len(jsonutil.encode(record.to_dict()))
    except jsonutil.NotJSONError as exc:
        where = _where(index)
        raise InvalidEventError(
            f"{where}.{exc.path}: {exc.problem}" if exc.path else f"{where}: {exc.problem}"
        ) from None
    if size > max_bytes:
        raise PayloadTooLargeError(f"{_where(index)}: {size} bytes, the limit is {max_bytes} bytes")
