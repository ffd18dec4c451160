"""Outlast's records in the shapes of Inngest's REST API (`pkg/api/apiv1`, `pkg/cqrs` in
inngest/inngest), plus the parsing of the ids and times those endpoints accept.

Inngest identifies apps and functions by UUID; Outlast by name. The UUIDs given out here are
derived from the names (UUIDv5), so they are stable across restarts and servers.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from outlast.core.events import SCHEDULED_TIMER
from outlast.core.jobs import QueueJob
from outlast.core.models import EventRecord, Run

NIL_UUID = "00000000-0000-0000-0000-000000000000"
_ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
_DIGITS = re.compile(r"^\d+$")

#: Inngest's RunStatus names (`enums.RunStatus`, as its JSON encoding spells them)
REST_STATUS = {
    "queued": "Scheduled",
    "running": "Running",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "skipped": "Skipped",
}


def app_uuid(app_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"outlast-app:{app_id}"))


def function_uuid(app_id: str, function_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"outlast-function:{app_id}:{function_id}"))


def iso(ms: int | None) -> str | None:
    """RFC 3339 in UTC with milliseconds, as Go's encoder writes a time.Time."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ulid_ms(ulid: str) -> int:
    """The creation time a ULID encodes."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    value = 0
    for char in ulid[:10]:
        value = value * 32 + alphabet.index(char)
    return value


def parse_ulid(text: str | None) -> str | None:
    """The ULID in canonical (upper-case) form, or None if `text` is not one."""
    if not isinstance(text, str):
        return None
    candidate = text.strip().upper()
    return candidate if _ULID.match(candidate) else None


def parse_time(text: str) -> int:
    """Milliseconds since the epoch from an RFC 3339 time (or `YYYY-MM-DD`, or unix seconds or
    milliseconds); ValueError when it is none of them. A time without an offset is UTC."""
    text = text.strip()
    if _DIGITS.match(text):
        number = int(text)
        return number * 1000 if number < 10_000_000_000 else number
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def received_at(event: EventRecord) -> int:
    return event.received_at if event.received_at is not None else ulid_ms(event.id)


def cron_of(event: EventRecord | None) -> str | None:
    """The schedule of a cron-triggered run's `inngest/scheduled.timer` event."""
    if event is None or event.name != SCHEDULED_TIMER:
        return None
    cron = event.data.get("cron")
    return cron if isinstance(cron, str) else None


def event_json(event: EventRecord) -> dict[str, Any]:
    """`cqrs.Event`: `internal_id` is the id `POST /e/{key}` returned, `id` the sender's id (or the internal one)."""
    out: dict[str, Any] = {
        "internal_id": event.id,
        "account_id": NIL_UUID,
        "environment_id": NIL_UUID,
        "source": "",
        "source_id": None,
        "received_at": iso(received_at(event)),
        "id": event.public_id(),
        "name": event.name,
        "data": event.data,
        "ts": event.ts,
    }
    if event.user:
        out["user"] = event.user
    return out


def run_output(run: Run) -> Any:
    """What Inngest reports as a run's output: the return value, or the error of a failed run."""
    if run.status == "completed":
        return run.output
    if run.status == "failed":
        return run.error
    return None


def run_json(run: Run, *, cron: str | None = None) -> dict[str, Any]:
    """`cqrs.FunctionRun`."""
    out: dict[str, Any] = {
        "run_id": run.id,
        "run_started_at": iso(run.created_at),
        "function_id": function_uuid(run.app_id, run.function_id),
        "function_version": 1,
        "environment_id": NIL_UUID,
        "event_id": run.event_ids[0] if run.event_ids else None,
        "status": REST_STATUS.get(run.status, "Unknown"),
        "ended_at": iso(run.ended_at),
    }
    if run.parent_run_id is not None:
        out["original_run_id"] = run.parent_run_id
    if cron is not None:
        out["cron"] = cron
    output = run_output(run)
    if output is not None:
        out["output"] = output
    return out


def job_kind(job: QueueJob, run: Run) -> str:
    """Inngest's queue item kinds: `start` (a run not begun), `edge` (its next step), `sleep` and
    `pause` (waiting on a sleep, or an event or invoke), `cancel` (a timeout that cancels it)."""
    if job.kind == "timeout":
        return "cancel"
    if run.status == "queued":
        return "start"
    pending = {s.status for s in run.steps}
    if "sleeping" in pending and not pending & {"waiting", "invoking", "retrying"}:
        return "sleep"
    if pending & {"waiting", "invoking"}:
        return "pause"
    return "edge"


def job_json(job: QueueJob, run: Run) -> dict[str, Any]:
    """`queue.JobResponse` (its `JobID` and `Raw` keys are capitalised in Inngest's JSON too)."""
    return {
        "JobID": job.id,
        "at": iso(job.due_at),
        "position": job.position,
        "kind": job_kind(job, run),
        "attempt": len(run.failures),
        "Raw": {
            "id": job.id,
            "kind": job.kind,
            "run_id": run.id,
            "due_at": iso(job.due_at),
            "leased": job.leased,
            **({"timeout": job.timeout} if job.timeout else {}),
        },
    }
