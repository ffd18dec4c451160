"""Cron triggers as queue items: which items an app's functions want, when they fire next, and the
event a tick ingests. Shared by every store, so they schedule and fire crons the same way."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from outlast.core.config import CronTrigger, FunctionConfig
from outlast.core.cron import parse_schedule
from outlast.core.events import SCHEDULED_TIMER
from outlast.core.ids import new_ulid
from outlast.core.models import EventRecord


def cron_items(app_id: str, configs: Iterable[FunctionConfig]) -> dict[str, dict[str, Any]]:
    """One item per cron trigger: item id -> payload (`slug`, `function_id`, `cron`, `jitter_ms`)."""
    wanted: dict[str, dict[str, Any]] = {}
    for config in configs:
        for i, trigger in enumerate(config.triggers):
            if isinstance(trigger, CronTrigger):
                wanted[f"cron:{app_id}:{config.id}:{i}"] = {
                    "slug": config.slug,
                    "function_id": config.id,
                    "cron": trigger.cron,
                    "jitter_ms": trigger.jitter_ms,
                }
    return wanted


def next_tick(payload: dict[str, Any], now: int) -> int:
    """When a cron item is due next: its schedule's first tick after `now`, plus its jitter.

    The jitter is derived from the function and the tick, not drawn at random: every worker
    computes the same time for a tick, and tests are repeatable.
    """
    tick = parse_schedule(payload["cron"]).next_after(now)
    jitter = payload.get("jitter_ms") or 0
    if not jitter:
        return tick
    digest = hashlib.sha1(f"{payload['slug']}:{tick}".encode()).digest()
    return tick + int.from_bytes(digest[:8], "big") % (jitter + 1)


def tick_event(payload: dict[str, Any], now: int) -> EventRecord:
    """The `inngest/scheduled.timer` event a tick ingests, targeted at the item's function."""
    return EventRecord(
        id=new_ulid(now),
        name=SCHEDULED_TIMER,
        ts=now,
        user={},
        data={"cron": payload["cron"], "_inngest": {"fn_id": payload["slug"]}},
    )
