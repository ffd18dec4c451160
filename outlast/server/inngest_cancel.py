"""Bulk cancellation, `POST /v1/cancellations` in Inngest's shape: the request parsed and the
answer shaped here; the cancelling itself (`runtime.bulk_cancel`) is the one `app.cancel_runs`
runs too. Inngest runs bulk cancellations in the background; here the request returns when they
are done, with how many runs were cancelled and whether more may remain (repeat the request to
continue: runs already cancelled are not active any more).
"""

from __future__ import annotations

from typing import Any

from outlast.core.expressions import EVENT, ExpressionError, compile_expression
from outlast.core.registry import CompiledFunction
from outlast.runtime.bulk_cancel import BulkCancellation, cancel_matching
from outlast.runtime.engine import Engine
from outlast.server.inngest_shapes import NIL_UUID, app_uuid, function_uuid, iso, parse_time

#: Inngest accepts a `started_before` up to this far in the future (clock skew)
FUTURE_SLACK_MS = 5_000


class CancellationError(ValueError):
    """A request that cannot be carried out: `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def parse_request(body: Any, engine: Engine, now_ms: int) -> BulkCancellation:
    """The cancellation a request body asks for; CancellationError naming what is wrong."""
    if not isinstance(body, dict):
        raise CancellationError(400, "the body must be a JSON object with app_id, function_id and started_before")
    problems = [f"{field} is required" for field in ("app_id", "function_id", "started_before") if not body.get(field)]
    problems += [
        f"{field} must be a string"
        for field in ("app_id", "function_id", "started_after", "started_before", "if")
        if body.get(field) is not None and not isinstance(body[field], str)
    ]
    if problems:
        raise CancellationError(400, "; ".join(problems))
    before = _time(body, "started_before")
    after = _time(body, "started_after") if body.get("started_after") else None
    if before > now_ms + FUTURE_SLACK_MS:
        raise CancellationError(400, "started_before must be in the past")
    if after is not None and after > before:
        raise CancellationError(400, "started_after must be before started_before")
    condition = None
    if body.get("if"):
        try:
            condition = compile_expression(body["if"], variables=EVENT, result="bool")
        except ExpressionError as exc:
            raise CancellationError(400, f"invalid expression: {exc}") from None
    function = _find_function(engine, body["app_id"], body["function_id"])
    return BulkCancellation(function=function, started_after=after, started_before=before, condition=condition)


def _time(body: dict[str, Any], field: str) -> int:
    try:
        return parse_time(body[field])
    except ValueError as exc:
        raise CancellationError(400, f"{field}: {exc}") from None


def _find_function(engine: Engine, app_id: str, function_id: str) -> CompiledFunction:
    """The function as the SDK named it (`fn-id`), or by Inngest's composite slug (`app-fn-id`)."""
    registry = engine.registry
    found = registry.get(app_id, function_id) or registry.get(app_id, function_id.removeprefix(f"{app_id}-"))
    if found is None:
        by_slug = registry.by_slug(function_id)
        found = by_slug if by_slug is not None and by_slug.app_id == app_id else None
    if found is None:
        raise CancellationError(404, f"function not found: app {app_id!r} has no function {function_id!r}")
    return found


async def cancel_runs(engine: Engine, request: BulkCancellation, now_ms: int) -> dict[str, Any]:
    """Cancel the matching runs; the answer is Inngest's `cqrs.Cancellation` plus `cancelled`
    (how many runs this request cancelled) and `has_more` (whether the limit stopped it)."""
    done = await cancel_matching(engine, request, now_ms)
    fn = request.function
    return {
        "id": done.id,
        "created_at": iso(now_ms),
        "name": None,
        "account_id": NIL_UUID,
        "environment_id": NIL_UUID,
        "app_id": app_uuid(fn.app_id),
        "function_internal_id": function_uuid(fn.app_id, fn.id),
        "function_id": fn.slug,
        "started_after": iso(request.started_after),
        "started_before": iso(request.started_before),
        **({"if": request.condition.source} if request.condition is not None else {}),
        "kind": "bulk_run",
        "cause": "API",
        "queue_name": None,
        "cancelled": done.cancelled,
        "has_more": done.has_more,
    }
