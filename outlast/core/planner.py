"""The pure half of ingest: from an event and the registry, the runs to create and their keys.

The store calls `Planner.plan` inside its ingest transaction and applies the plans atomically
(idempotency, rate limits, singleton, debounce, batching, throttle are enforced there, with
the keys evaluated here).
"""

from __future__ import annotations

from typing import Any

from outlast.core.config import PRIORITY_LIMIT_S, YEAR_MS
from outlast.core.events import FUNCTION_INVOKED, SCHEDULED_TIMER
from outlast.core.expressions import compile_expression, indexable, key_value, lookup
from outlast.core.ids import new_ulid
from outlast.core.models import EventRecord, RunPlan, WaitSpec
from outlast.core.registry import CompiledFunction, Registry


class Planner:
    """What a store asks of the engine while it ingests (see `outlast.storage.base.Planner`)."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()

    def plan(self, event: EventRecord, now_ms: int) -> list[RunPlan]:
        """The runs an event starts (before idempotency and rate limits, which the store checks)."""
        payload = event.to_dict()
        if event.name in (FUNCTION_INVOKED, SCHEDULED_TIMER):
            target = self.registry.by_slug(str(lookup(payload, "data._inngest.fn_id")))
            return [plan_run(target, event, payload, now_ms)] if target else []
        return [
            plan_run(fn, event, payload, now_ms)
            for fn, expr in self.registry.by_event.get(event.name, ())
            if expr is None or expr.matches({"event": payload})
        ]

    def matches(self, expression: str, trigger: dict[str, Any], incoming: dict[str, Any]) -> bool:
        return compile_expression(expression).matches({"event": trigger, "async": incoming})

    def has_concurrency_limits(self) -> bool:
        return self.registry.has_concurrency_limits


def wait_spec(
    *,
    kind: Any,
    event_name: str,
    expression: str | None,
    trigger: dict[str, Any],
    expires_at: int,
    step_key: str | None = None,
    lookback_ms: int | None = None,
) -> WaitSpec:
    """A wait on `event_name`. Equalities with the trigger or a literal make it an indexed wait
    (value precomputed); what else its expression says is kept and evaluated on what the index finds."""
    conj = indexable(expression) if expression else None
    return WaitSpec(
        kind=kind,
        event_name=event_name,
        expression=None if conj is not None and conj.exact else expression or "true",
        match_field=conj.field if conj else None,
        match_value=conj.value(trigger) if conj else None,
        expires_at=expires_at,
        step_key=step_key,
        lookback_ms=lookback_ms,
    )


def plan_run(fn: CompiledFunction, event: EventRecord, payload: dict[str, Any], now: int) -> RunPlan:
    plan = RunPlan(
        run_id=new_ulid(now), app_id=fn.app_id, function_id=fn.id, event_ids=[event.id], created_at=now, due_at=now
    )
    if event.name == FUNCTION_INVOKED and isinstance(
        correlation := lookup(payload, "data._inngest.correlation_id"), str
    ):
        plan.parent_run_id = correlation.split(".", 1)[0]
    if fn.plain:
        return plan
    if fn.idempotency is not None:
        plan.idempotency_key = f"{fn.slug}:{fn.idempotency.evaluate({'event': payload})!r}"
    for event_name, expression, timeout_ms in fn.cancels:
        plan.cancel_waits.append(
            wait_spec(
                kind="cancel",
                event_name=event_name,
                expression=expression,
                trigger=payload,
                expires_at=now + (timeout_ms or YEAR_MS),
            )
        )
    timeouts = fn.config.timeouts
    if timeouts is not None:
        if timeouts.start_ms:
            plan.start_deadline = now + timeouts.start_ms
        plan.finish_timeout_ms = timeouts.finish_ms
    _flow_control(fn, plan, {"event": payload}, now)
    return plan


def _flow_control(fn: CompiledFunction, plan: RunPlan, variables: dict[str, Any], now: int) -> None:
    """Evaluate the function's flow-control keys for this event into the plan."""
    if not fn.flow_control:
        return
    cfg = fn.config

    def key(option: str, scope: str = "fn") -> str:
        expr = fn.keys.get(option)
        value = key_value(expr, variables["event"]) if expr else ""
        prefix = {"fn": fn.slug, "app": f"app:{fn.app_id}", "account": "account"}[scope]
        return f"{prefix}:{option.split('.')[0]}:{expr.source if expr else ''}={value}"

    for i, limit in enumerate(cfg.concurrency):
        plan.concurrency.append((key(f"concurrency.{i}", limit.scope), limit.limit))
    if t := cfg.throttle:
        plan.throttle = (key("throttle"), t.limit, t.period_ms, t.burst)
    if r := cfg.rate_limit:
        plan.rate_limit = (key("rate_limit"), r.limit, r.period_ms)
    if d := cfg.debounce:
        plan.debounce = (key("debounce"), d.period_ms, d.timeout_ms)
    if (b := cfg.batch) and (fn.batch_if is None or fn.batch_if.matches(variables)):
        plan.batch = (key("batch"), b.max_size, b.timeout_ms)
    if s := cfg.singleton:
        plan.singleton = (key("singleton"), s.mode)
    if fn.priority is not None:
        try:
            seconds = fn.priority.evaluate(variables)
        except Exception:
            seconds = 0
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            plan.due_at = now - 1000 * max(-PRIORITY_LIMIT_S, min(PRIORITY_LIMIT_S, seconds))
