"""Cron schedules: 5-field expressions with an optional `TZ=Area/City ` prefix."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter


@dataclass(frozen=True)
class Schedule:
    expression: str
    tz: str | None

    def next_after(self, after_ms: int) -> int:
        """The first tick strictly after `after_ms`, in epoch milliseconds."""
        zone = ZoneInfo(self.tz) if self.tz else UTC
        start = datetime.fromtimestamp(after_ms / 1000, tz=zone)
        tick: datetime = croniter(self.expression, start).get_next(datetime)
        return int(tick.timestamp() * 1000)


def parse_schedule(text: str) -> Schedule:
    """Parse or raise ValueError saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a cron schedule must be a non-empty string")
    tz = None
    body = text.strip()
    if body.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, body = body.partition(" ")
        tz = prefix.split("=", 1)[1]
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r} in {text!r}") from None
    if len(body.split()) != 5 or not croniter.is_valid(body):
        raise ValueError(f"invalid cron expression {body!r} (expected 5 fields, e.g. '0 9 * * *')")
    return Schedule(body, tz)
