"""Cron schedules: 5-field expressions with an optional `TZ=Area/City ` prefix.

Ticks are local wall-clock times in the schedule's zone (UTC without a prefix), and each fires
once. Across daylight-saving changes that means:
- autumn (a wall-clock hour happens twice): a tick in the repeated hour fires once, at its first
  occurrence (`30 2 * * *` in Paris fires at 02:30 CEST, not again at 02:30 CET);
- spring (a wall-clock hour is skipped): a tick in the skipped hour fires once, shifted forward by
  the length of the gap (02:30, which does not exist, fires at 03:30 CEST).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

#: wall-clock ticks to look at for the next one after a time: one, except inside a repeated
#: hour, where up to an hour of per-minute ticks map to instants already past
_MAX_STEPS = 24 * 60


@dataclass(frozen=True)
class Schedule:
    expression: str
    tz: str | None

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.tz) if self.tz else UTC

    def next_after(self, after_ms: int) -> int:
        """The first tick strictly after `after_ms`, in epoch milliseconds."""
        zone = self.zone
        # walk wall-clock ticks from a little before `after_ms` in local time: a local time may
        # map to an earlier instant than `after_ms` (a repeated hour), so keep the first one after
        wall = datetime.fromtimestamp(after_ms / 1000, tz=zone).replace(tzinfo=None)
        ticks = croniter(self.expression, wall)
        for _ in range(_MAX_STEPS):
            local: datetime = ticks.get_next(datetime)
            at = _instant(local, zone)
            if at > after_ms:
                return at
        raise ValueError(f"cron {self.expression!r}: no tick found after {after_ms}")  # pragma: no cover


def _instant(wall: datetime, zone: tzinfo) -> int:
    """The epoch milliseconds of a wall-clock time in `zone`: the first occurrence of a repeated
    time (fold=0), and a skipped time shifted forward by the gap (what fold=0 gives for it too)."""
    return int(wall.replace(tzinfo=zone, fold=0).timestamp() * 1000)


@lru_cache(maxsize=1024)
def parse_schedule(text: str) -> Schedule:
    """Parse or raise ValueError saying what is wrong (including a date that never comes, such as
    February 30th)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a cron schedule must be a non-empty string")
    tz = None
    body = text.strip()
    if body.startswith(("TZ=", "CRON_TZ=")):
        prefix, _, body = body.partition(" ")
        body = body.strip()
        tz = prefix.split("=", 1)[1]
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r} in {text!r}") from None
    if len(body.split()) != 5 or not croniter.is_valid(body):
        raise ValueError(f"invalid cron expression {body!r} (expected 5 fields, e.g. '0 9 * * *')")
    try:
        croniter(body, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"cron expression {body!r} never matches a date (such as February 30th)") from None
    return Schedule(body, tz)
