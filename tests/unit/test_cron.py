"""Cron schedules: one run per local wall-clock tick, across daylight-saving changes too."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from outlast.core.cron import parse_schedule

PARIS = ZoneInfo("Europe/Paris")


def ticks(expression: str, start: datetime, count: int) -> list[str]:
    schedule, at, out = parse_schedule(expression), int(start.timestamp() * 1000), []
    for _ in range(count):
        at = schedule.next_after(at)
        out.append(datetime.fromtimestamp(at / 1000, PARIS).strftime("%m-%d %H:%M%z"))
    return out


def test_a_daily_tick_in_the_repeated_autumn_hour_fires_once() -> None:
    assert ticks("TZ=Europe/Paris 30 2 * * *", datetime(2027, 10, 30, 12, tzinfo=UTC), 3) == [
        "10-31 02:30+0200",
        "11-01 02:30+0100",
        "11-02 02:30+0100",
    ]


def test_a_daily_tick_in_the_skipped_spring_hour_fires_once_shifted_by_the_gap() -> None:
    assert ticks("TZ=Europe/Paris 30 2 * * *", datetime(2027, 3, 27, 12, tzinfo=UTC), 3) == [
        "03-28 03:30+0200",
        "03-29 02:30+0200",
        "03-30 02:30+0200",
    ]


def test_hourly_ticks_are_one_per_wall_clock_hour_across_both_changes() -> None:
    assert ticks("TZ=Europe/Paris 0 * * * *", datetime(2027, 10, 30, 22, tzinfo=UTC), 4) == [
        "10-31 01:00+0200",
        "10-31 02:00+0200",
        "10-31 03:00+0100",
        "10-31 04:00+0100",
    ]
    assert ticks("TZ=Europe/Paris 0 * * * *", datetime(2027, 3, 27, 23, tzinfo=UTC), 3) == [
        "03-28 01:00+0100",
        "03-28 03:00+0200",
        "03-28 04:00+0200",
    ]


def test_from_inside_the_repeated_hour_the_next_tick_is_after_it() -> None:
    second_0205 = datetime(2027, 10, 31, 1, 5, tzinfo=UTC)  # 02:05 CET, the second time 02:05 happens
    assert ticks("TZ=Europe/Paris * * * * *", second_0205, 2) == ["10-31 03:00+0100", "10-31 03:01+0100"]


def test_without_a_zone_ticks_are_utc() -> None:
    assert ticks("0 9 * * *", datetime(2027, 10, 30, 12, tzinfo=UTC), 1) == ["10-31 10:00+0100"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 0 30 2 *", "never matches a date"),
        ("TZ=Europe/Paris 0 0 31 4 *", "never matches a date"),
        ("TZ=Mars/Olympus 0 9 * * *", "unknown time zone"),
        ("0 9 * *", "expected 5 fields"),
    ],
)
def test_schedules_that_can_never_fire_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_schedule(text)


def test_a_leap_day_schedule_is_possible() -> None:
    assert parse_schedule("0 0 29 2 *").next_after(0) == int(datetime(1972, 2, 29, tzinfo=UTC).timestamp() * 1000)
