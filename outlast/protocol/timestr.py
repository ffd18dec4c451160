"""Times as the SDKs write them: durations ("1h30m", "2d", "500ms", "1.5h"), dates (sleep
until, `Retry-After`), and the ms values the engine works in."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from outlast.core.durations import to_ms


class TimeError(ValueError):
    """A duration or date that cannot be read; the message quotes it."""


def duration_ms(value: object) -> int:
    """A duration string ("1h30m", "10s", "2d"; Go's syntax plus days and weeks) or a number of
    milliseconds, as whole milliseconds."""
    if isinstance(value, bool):
        raise TimeError(f"expected a duration, got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise TimeError(f"a duration cannot be negative, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise TimeError(f"expected a duration string such as '10s' or '1h30m', got {value!r}")
    text = value.strip()
    if text in ("0", ""):
        return 0
    try:
        return to_ms(text, what="duration")
    except ValueError:
        raise TimeError(f"invalid duration {value!r} (expected e.g. '500ms', '10s', '1h30m', '2d')") from None


def date_ms(text: str) -> int | None:
    """An RFC 3339 / ISO 8601 date (a trailing Z allowed), as epoch ms; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def sleep_until_ms(text: object, now_ms: int) -> int:
    """A Sleep op's target: a date (values of 10+ characters are tried as dates first, as
    Inngest does; a past date means now) or a duration from now."""
    if isinstance(text, str) and len(text.strip()) >= 10:
        at = date_ms(text)
        if at is not None:
            return max(at, now_ms)
    return now_ms + duration_ms(text)


def retry_after_ms(value: str | None, now_ms: int) -> int | None:
    """A `Retry-After` header (seconds, an RFC 3339 or HTTP date, or unix seconds) as an absolute
    time in ms; None when absent or unreadable (the backoff table then applies)."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        number = int(text)
        return number * 1000 if number > 1_000_000_000 else now_ms + number * 1000
    at = date_ms(text)
    if at is not None:
        return at
    try:
        return int(parsedate_to_datetime(text).timestamp() * 1000)
    except (TypeError, ValueError):
        return None
