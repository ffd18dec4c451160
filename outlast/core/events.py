"""Event names the engine knows, and the validation every entry point applies to an event."""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.models import EventRecord
from outlast.errors import InvalidEventError, PayloadTooLargeError

MAX_NAME_LENGTH = 512
DEFAULT_MAX_EVENT_BYTES = 512 * 1024
SYSTEM_PREFIX = "inngest/"
FUNCTION_FAILED = "inngest/function.failed"
FUNCTION_FINISHED = "inngest/function.finished"
FUNCTION_CANCELLED = "inngest/function.cancelled"
FUNCTION_INVOKED = "inngest/function.invoked"
SCHEDULED_TIMER = "inngest/scheduled.timer"


def validate_event(
    raw: Any, *, internal_id: str, now_ms: int, max_bytes: int, index: int = 0, allow_system: bool = False,
) -> EventRecord:
    """Check an event (a JSON object, or anything with `to_dict()`) and return its record, or raise
    InvalidEventError naming the field."""
    where = f"event[{index}]"
    if not isinstance(raw, dict) and callable(getattr(raw, "to_dict", None)):
        raw = raw.to_dict()
    if not isinstance(raw, dict):
        raise InvalidEventError(f"{where}: expected an Event or a JSON object, got {type(raw).__name__}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidEventError(f"{where}.name: an event needs a non-empty name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidEventError(f"{where}.name: {len(name)} characters, the limit is {MAX_NAME_LENGTH}")
    if name.lower().startswith(SYSTEM_PREFIX) and not allow_system:
        raise InvalidEventError(f"{where}.name: names starting with 'inngest/' are reserved ({name!r})")
    data = _object(raw.get("data"), f"{where}.data")
    user = _object(raw.get("user"), f"{where}.user")
    dedupe_id = raw.get("id") or None
    if dedupe_id is not None and not isinstance(dedupe_id, str):
        raise InvalidEventError(f"{where}.id: must be a string, got {type(dedupe_id).__name__}")
    ts = raw.get("ts") or now_ms
    if not isinstance(ts, int) or isinstance(ts, bool) or ts < 0:
        raise InvalidEventError(f"{where}.ts: must be integer milliseconds since the epoch, got {ts!r}")
    record = EventRecord(id=internal_id, name=name, data=data, user=user, ts=ts, dedupe_id=dedupe_id)
    _check_size(record, where, max_bytes)
    return record


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEventError(f"{where}: must be a JSON object, got {type(value).__name__}")
    return value


def _check_size(record: EventRecord, where: str, max_bytes: int) -> None:
    try:
        size = len(jsonutil.dumps(record.to_dict()).encode())
    except jsonutil.NotJSONError as exc:
        raise InvalidEventError(f"{where}: not JSON-serialisable: {exc}") from None
    if size > max_bytes:
        raise PayloadTooLargeError(f"{where}: {size} bytes, the limit is {max_bytes} bytes")
