"""The JSON shapes of the read API (the dashboard's templates read the same objects)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from outlast.core.config import FunctionConfig
from outlast.core.models import EventEffect, EventRecord, LogLine, Run, StepRecord, SyncedApp, WorkerInfo
from outlast.core.views import FunctionStats, RerunLinks, StatusCounts


def run_json(run: Run, *, steps: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": run.id,
        "app_id": run.app_id,
        "function_id": run.function_id,
        "status": run.status,
        "event_ids": run.event_ids,
        "output": run.output,
        "error": run.error,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "parent_run_id": run.parent_run_id,
        "skip_reason": run.skip_reason,
    }
    if steps:
        out["steps"] = [step_json(s) for s in run.steps]
        out["failures"] = [asdict(f) for f in run.failures]
    return out


def step_json(step: StepRecord) -> dict[str, Any]:
    return asdict(step)


def event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "id": event.id,
        "public_id": event.public_id(),
        "name": event.name,
        "data": event.data,
        "user": event.user,
        "ts": event.ts,
        "received_at": event.received_at,
    }


def effect_json(effect: EventEffect) -> dict[str, Any]:
    return asdict(effect)


def log_json(line: LogLine) -> dict[str, Any]:
    return asdict(line)


def links_json(links: RerunLinks) -> dict[str, Any]:
    return {
        "rerun_of": links.rerun_of,
        "rerun_from_step": links.from_step_key,
        "edited_output": links.edited,
        "reruns": links.reruns,
        "children": [{"id": i, "function_id": f, "status": s} for i, f, s in links.children],
    }


def counts_json(counts: StatusCounts) -> dict[str, Any]:
    return {"counts": counts.counts, "cap": counts.cap}


def function_json(config: FunctionConfig, stats: FunctionStats | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "app_id": config.app_id,
        "id": config.id,
        "slug": config.slug,
        "name": config.name,
        "config": config.to_json(),
    }
    if stats is not None:
        out["stats"] = stats_json(stats)
    return out


def stats_json(stats: FunctionStats) -> dict[str, Any]:
    return {"backlog": stats.backlog, "hour": asdict(stats.hour), "day": asdict(stats.day)}


def app_json(app: SyncedApp) -> dict[str, Any]:
    return asdict(app)


def worker_json(worker: WorkerInfo) -> dict[str, Any]:
    return asdict(worker)
