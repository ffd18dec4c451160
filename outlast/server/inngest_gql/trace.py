"""A run's trace in the shape of Inngest's `RunTraceSpan` tree, and the outputs its spans point to.

The root span ("Run") has one child per step, in the order the steps were first written, and a
"Finalization" child once the run completed or failed. A step that needed more than one attempt
(or failed) has one "Attempt n" child per attempt; a step that succeeded at once has none, as on
Inngest. `attempts` is the index of the latest attempt (0 for the first).

Output ids name what they point to: `<run id>:<step key>:<attempt>`, with an empty step key
for the function itself and an empty attempt for the final output or error.
"""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.core.models import AttemptRecord, Run, StepRecord
from outlast.server.inngest_gql.loader import Loader, QueryError
from outlast.server.inngest_gql.objects import RUN_STATUS, function_run, lazy
from outlast.server.inngest_shapes import app_uuid, function_uuid, iso, parse_ulid

STEP_STATUS = {
    "completed": "COMPLETED",
    "failed": "FAILED",
    "retrying": "QUEUED",
    "sleeping": "WAITING",
    "waiting": "WAITING",
    "invoking": "WAITING",
    "cancelled": "CANCELLED",
}
STEP_OP = {"run": "RUN", "send_event": "RUN", "sleep": "SLEEP", "wait_for_event": "WAIT_FOR_EVENT", "invoke": "INVOKE"}
#: steps whose final row carries an output worth showing
WITH_OUTPUT = ("run", "send_event", "wait_for_event", "invoke")


def output_id(run_id: str, key: str = "", attempt: int | None = None) -> str:
    return f"{run_id}:{key}:{'' if attempt is None else attempt}"


def root_span(loader: Loader, run: Run) -> dict[str, Any]:
    children = [step_span(loader, run, step) for step in run.steps]
    if run.status in ("completed", "failed"):
        children.append(_finalization(loader, run))
    ended = run.status in ("completed", "failed", "cancelled", "skipped")
    return _span(
        loader,
        run,
        span_id=run.id,
        name="Run",
        status=RUN_STATUS[run.status],
        attempts=0,
        started=run.started_at,
        ended=run.ended_at if ended else None,
        queued=run.created_at,
        output=output_id(run.id) if run.status in ("completed", "failed") else None,
        children=children,
        is_root=True,
        parent=None,
        skip_reason=run.skip_reason,
    )


def step_span(loader: Loader, run: Run, step: StepRecord) -> dict[str, Any]:
    span_id = f"{run.id}:{step.key}"
    final = step.status in ("completed", "failed")
    op = STEP_OP.get(step.kind)
    attempts = step.attempts if step.status == "retrying" else step.attempts - 1
    children = _attempt_spans(loader, run, step, span_id, op)
    name = step.detail.get("name") if step.detail and isinstance(step.detail.get("name"), str) else step.id
    span = _span(
        loader,
        run,
        span_id=span_id,
        name=str(name),
        status=STEP_STATUS.get(step.status, "RUNNING"),
        attempts=max(attempts, 0),
        started=step.started_at,
        ended=step.ended_at if final else None,
        queued=step.started_at or run.created_at,
        output=output_id(run.id, step.key) if final and step.kind in WITH_OUTPUT else None,
        children=children,
        is_root=False,
        parent=run.id,
        step_op=op,
        step_id=step.key,
    )
    span["stepInfo"] = lazy(lambda: _step_info(loader, run, step))
    return span


def _attempt_spans(loader: Loader, run: Run, step: StepRecord, parent: str, op: str | None) -> list[dict[str, Any]]:
    if step.status == "completed" and not step.failures:
        return []
    spans = [_attempt(loader, run, parent, failure, op, key=step.key) for failure in step.failures]
    if step.status == "completed":
        spans.append(
            _span(
                loader,
                run,
                span_id=f"{parent}:{step.attempts}",
                name=f"Attempt {step.attempts - 1}",
                status="COMPLETED",
                attempts=step.attempts - 1,
                started=step.started_at,
                ended=step.ended_at,
                queued=step.started_at or run.created_at,
                output=output_id(run.id, step.key) if step.kind in WITH_OUTPUT else None,
                children=[],
                is_root=False,
                parent=parent,
                step_op=op,
                step_id=step.key,
            )
        )
    elif step.status == "retrying":
        spans.append(
            _span(
                loader,
                run,
                span_id=f"{parent}:{step.attempts + 1}",
                name=f"Attempt {step.attempts}",
                status="QUEUED",
                attempts=step.attempts,
                started=None,
                ended=None,
                queued=step.deadline or run.created_at,
                output=None,
                children=[],
                is_root=False,
                parent=parent,
                step_op=op,
                step_id=step.key,
            )
        )
    return spans


def _attempt(
    loader: Loader, run: Run, parent: str, failure: AttemptRecord, op: str | None, *, key: str
) -> dict[str, Any]:
    return _span(
        loader,
        run,
        span_id=f"{parent}:{failure.attempt}",
        name=f"Attempt {failure.attempt - 1}",
        status="FAILED",
        attempts=failure.attempt - 1,
        started=failure.started_at,
        ended=failure.ended_at,
        queued=failure.started_at or run.created_at,
        output=output_id(run.id, key, failure.attempt),
        children=[],
        is_root=False,
        parent=parent,
        step_op=op,
        step_id=key or None,
    )


def _finalization(loader: Loader, run: Run) -> dict[str, Any]:
    span_id = f"{run.id}:finalization"
    children = [_attempt(loader, run, span_id, f, None, key="") for f in run.failures]
    if children:
        children.append(
            _span(
                loader,
                run,
                span_id=f"{span_id}:final",
                name=f"Attempt {len(run.failures)}",
                status=RUN_STATUS[run.status],
                attempts=len(run.failures),
                started=run.started_at,
                ended=run.ended_at,
                queued=run.created_at,
                output=output_id(run.id),
                children=[],
                is_root=False,
                parent=span_id,
            )
        )
    last_step_end = max((s.ended_at for s in run.steps if s.ended_at is not None), default=run.started_at)
    span = _span(
        loader,
        run,
        span_id=span_id,
        name="Finalization",
        status=RUN_STATUS[run.status],
        attempts=len(run.failures),
        started=last_step_end,
        ended=run.ended_at,
        queued=run.created_at,
        output=output_id(run.id),
        children=children,
        is_root=False,
        parent=run.id,
    )
    span["stepType"] = "FINALIZATION"
    return span


def _span(
    loader: Loader,
    run: Run,
    *,
    span_id: str,
    name: str,
    status: str,
    attempts: int | None,
    started: int | None,
    ended: int | None,
    queued: int,
    output: str | None,
    children: list[dict[str, Any]],
    is_root: bool,
    parent: str | None,
    step_op: str | None = None,
    step_id: str | None = None,
    skip_reason: str | None = None,
) -> dict[str, Any]:
    return {
        "appID": app_uuid(run.app_id),
        "functionID": function_uuid(run.app_id, run.function_id),
        "runID": run.id,
        "run": lazy(lambda: function_run(loader, run)),
        "spanID": span_id,
        "traceID": run.id,
        "groupID": None,
        "name": name,
        "status": status,
        "attempts": attempts,
        "duration": ended - started if ended is not None and started is not None else None,
        "outputID": output,
        "queuedAt": iso(queued),
        "scheduledAt": None,
        "startedAt": iso(started),
        "endedAt": iso(ended),
        "childrenSpans": children,
        "stepOp": step_op,
        "stepID": step_id,
        "stepInfo": None,
        "stepType": step_op or "",
        "isRoot": is_root,
        "parentSpanID": parent,
        "isUserland": False,
        "debugPaused": False,
        "skipReason": skip_reason,
        "metadata": [],
    }


async def _step_info(loader: Loader, run: Run, step: StepRecord) -> dict[str, Any] | None:
    detail = step.detail or {}
    until = detail.get("until") if isinstance(detail.get("until"), int) else step.deadline or step.ended_at
    if step.kind in ("run", "send_event"):
        return {"__typename": "RunStepInfo", "type": "step.sendEvent" if step.kind == "send_event" else None}
    if step.kind == "sleep":
        return {"__typename": "SleepStepInfo", "sleepUntil": iso(until or step.started_at or run.created_at)}
    timed_out = (
        step.status in ("completed", "failed") and step.output is None
        if step.kind == "wait_for_event"
        else (step.status == "failed" and (step.error or {}).get("name") == "InngestInvokeTimeoutError")
    )
    if step.kind == "wait_for_event":
        return {
            "__typename": "WaitForEventStepInfo",
            "eventName": str(detail.get("event") or ""),
            "expression": detail.get("if"),
            "timeout": iso(until or run.created_at),
            "foundEventID": None,
            "timedOut": timed_out if step.status in ("completed", "failed") else None,
        }
    if step.kind == "invoke":
        correlation = f"{run.id}.{step.key}"
        child = next(
            (
                (rid, e)
                for rid, e in await loader.children(run.id)
                if (e.data.get("_inngest") or {}).get("correlation_id") == correlation
            ),
            None,
        )
        return {
            "__typename": "InvokeStepInfo",
            "triggeringEventID": child[1].id if child else "",
            "functionID": str(detail.get("function") or ""),
            "timeout": iso(until or run.created_at),
            "returnEventID": None,
            "runID": child[0] if child else None,
            "timedOut": timed_out if step.status in ("completed", "failed") else None,
        }
    return None


# -- outputs ---------------------------------------------------------------------------------------


async def span_output(loader: Loader, text: str) -> dict[str, Any]:
    """`RunTraceSpanOutput` for an output id; QueryError when it names nothing."""
    parts = text.split(":")
    run_id = parse_ulid(parts[0]) if len(parts) == 3 else None
    if run_id is None or (parts[2] and not parts[2].isdigit()):
        raise QueryError(f"error parsing span identifier: {text!r} is not an output id")
    run = await loader.run(run_id)
    key, attempt = parts[1], int(parts[2]) if parts[2] else None
    found = _find_output(run, key, attempt) if run is not None else None
    if found is None:
        raise QueryError(f"no output with id {text!r}")
    data, error = found
    return {
        "input": None,
        "data": None if error is not None else jsonutil.dumps(data),
        "error": None if error is None else _error(error),
    }


def _find_output(run: Run, key: str, attempt: int | None) -> tuple[Any, dict[str, Any] | None] | None:
    """(data, error) of the run or one of its steps, final or of one failed attempt."""
    if key == "":
        failures, status, output, error = run.failures, run.status, run.output, run.error
    else:
        step = next((s for s in run.steps if s.key == key), None)
        if step is None:
            return None
        failures, status, output, error = step.failures, step.status, step.output, step.error
    if attempt is not None:
        failure = next((f for f in failures if f.attempt == attempt), None)
        return None if failure is None else (None, failure.error)
    if status == "completed":
        return output, None
    if status == "failed":
        return None, error or {"name": "Error", "message": "failed"}
    return None


def _error(error: Any) -> dict[str, Any]:
    if not isinstance(error, dict):
        return {"message": jsonutil.dumps(error), "name": None, "stack": None, "cause": None}
    message = error.get("message")
    return {
        "message": message if isinstance(message, str) else jsonutil.dumps(message),
        "name": error.get("name") if isinstance(error.get("name"), str) else None,
        "stack": error.get("stack") if isinstance(error.get("stack"), str) else None,
        "cause": error.get("cause"),
    }
