"""Cron triggers as queue items: which items an app's functions want, when they fire next, and the
event a tick ingests. Shared by every store, so they schedule and fire crons the same way."""

from __future__ import annotations

import random
from typing import Any

from outlast.core.cron import parse_schedule
from outlast.core.ids import new_ulid
from outlast.events import SCHEDULED_TIMER, EventRecord


def cron_items(app_id: str, configs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One item per cron trigger: item id -> payload (`slug`, `cron`, `jitter_ms`)."""
    wanted: dict[str, dict[str, Any]] = {}
    for config in configs:
        for i, trigger in enumerate(config["triggers"]):
            if "cron" in trigger:
                wanted[f"cron:{app_id}:{config['id']}:{i}"] = {
                    "slug": f"{app_id}-{config['id']}", "cron": trigger["cron"], "jitter_ms": trigger.get("jitter_ms")}
    return wanted


def next_tick(payload: dict[str, Any], now: int) -> int:
    """When a cron item is due next: its schedule's first tick after `now`, plus random jitter."""
    jitter = payload.get("jitter_ms") or 0
    return parse_schedule(payload["cron"]).next_after(now) + (random.randint(0, jitter) if jitter else 0)


def tick_event(payload: dict[str, Any], now: int) -> EventRecord:
    """The `inngest/scheduled.timer` event a tick ingests, targeted at the item's function."""
    return EventRecord(new_ulid(now), SCHEDULED_TIMER, {"cron": payload["cron"], "_inngest": {
        "fn_id": payload["slug"]}}, {}, now)
