"""Delayed starts: an event with a future `ts` starts its runs then: queued until that time,
cancellable, with flow control as of the start time."""

from __future__ import annotations

import pytest

import outlast
from outlast import Context, Event
from outlast.testing import TestEngine

HOUR = 3_600_000


async def test_a_future_ts_queues_the_run_until_then(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="later", trigger="t/later")
    async def later(ctx: Context) -> int:
        return ctx.event.ts

    async with engine as t:
        at = t.now_ms() + HOUR
        [event_id] = await t.send(Event(name="t/later", ts=at))
        await t.send(Event(name="t/later"))  # now: runs at once
        await t.run_until_idle()
        delayed = t.runs(event_id=event_id)[0]
        assert (delayed.status, delayed.created_at) == ("queued", at)
        assert len(t.runs(status="completed")) == 1
        t.advance("59m")
        await t.run_until_idle()
        assert t.runs(event_id=event_id)[0].status == "queued"
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs(event_id=event_id)
    assert run.status == "completed" and run.output == at and run.started_at == at


async def test_a_delayed_run_can_be_cancelled_before_it_starts(app: outlast.Outlast, engine: TestEngine) -> None:
    ran: list[int] = []

    @app.function(id="cancel-me", trigger="t/later")
    async def cancel_me(ctx: Context) -> None:
        ran.append(1)

    async with engine as t:
        [event_id] = await t.send(Event(name="t/later", ts=t.now_ms() + HOUR))
        [run] = t.runs(event_id=event_id)
        assert await t.cancel_run(run.id)
        t.advance("2h")
        await t.run_until_idle()
        [run] = t.runs(event_id=event_id)
    assert run.status == "cancelled" and ran == []


async def test_idempotency_counts_from_the_start_time(app: outlast.Outlast, engine: TestEngine) -> None:
    @app.function(id="once-a-day", trigger="t/charge", idempotency="event.data.customer")
    async def once_a_day(ctx: Context) -> None:
        return None

    async with engine as t:
        now = t.now_ms()
        await t.send(Event(name="t/charge", data={"customer": "c"}))
        await t.send(Event(name="t/charge", data={"customer": "c"}, ts=now + 30 * HOUR))  # a day after: runs
        await t.send(Event(name="t/charge", data={"customer": "c"}, ts=now + 31 * HOUR))  # same day as that
        t.advance("2d")
        await t.run_until_idle()
        statuses = [r.status for r in t.runs()]
    assert sorted(statuses) == ["completed", "completed", "skipped"]


async def test_a_ts_more_than_a_year_ahead_is_refused(app: outlast.Outlast) -> None:
    async with TestEngine(app) as t:
        with pytest.raises(outlast.InvalidEventError, match=r"event\[0\]\.ts: .*at most one year ahead"):
            await t.send(Event(name="t/x", ts=t.now_ms() + 400 * 24 * HOUR))
        assert t.runs() == []
