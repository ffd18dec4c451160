"""Compiled function configurations, indexed by trigger event, and the run planner.

The planner is the pure half of ingest: from an event and the functions' configurations it
decides which runs to create and with what keys. The store applies the plans atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from outlast.core.expressions import (
    Expression, ExpressionError, as_equality, compile_expression, lookup, match_to_expression,
)
from outlast.core.ids import new_ulid
from outlast.events import FUNCTION_INVOKED, EventRecord
from outlast.errors import FunctionConfigError
from outlast.core import jsonutil


@dataclass(frozen=True)
class WaitSpec:
    """A stored wait: resumes (or cancels) a run when a matching event arrives.

    When the expression is an equality between a trigger field and an incoming field, the
    expected value is precomputed (`match_field`/`match_value`) so events find waits by index.
    """

    kind: str  # wait | invoke | cancel
    event_name: str
    expression: str | None
    match_field: str | None
    match_value: str | None
    expires_at: int
    step_key: str | None = None


@dataclass
class RunPlan:
    run_id: str
    app_id: str
    function_id: str
    event_ids: list[str]
    created_at: int
    due_at: int
    parent_run_id: str | None = None
    idempotency_key: str | None = None
    cancel_waits: list[WaitSpec] = field(default_factory=list)
    start_deadline: int | None = None
    finish_timeout_ms: int | None = None


@dataclass
class CompiledFunction:
    config: dict[str, Any]
    triggers: list[tuple[str, Expression | None]]
    cancels: list[tuple[dict[str, Any], str]]
    idempotency: Expression | None

    @property
    def id(self) -> str:
        return str(self.config["id"])

    @property
    def app_id(self) -> str:
        return str(self.config["app_id"])

    @property
    def slug(self) -> str:
        return f"{self.app_id}-{self.id}"

    @property
    def max_attempts(self) -> int:
        return int(self.config["retries"]) + 1


def compile_function(config: dict[str, Any]) -> CompiledFunction:
    fn_id = config["id"]

    def compiled(option: str, source: str) -> Expression:
        try:
            return compile_expression(source)
        except ExpressionError as exc:
            raise FunctionConfigError(f"function {fn_id!r}: option {option!r}: {exc}") from None

    triggers = [(t["event"], compiled("trigger.if_", t["if"]) if t.get("if") else None)
                for t in config["triggers"] if "event" in t]
    cancels = []
    for rule in config.get("cancel", []):
        try:
            expr = _cancel_expression(rule)
        except ExpressionError as exc:
            raise FunctionConfigError(f"function {fn_id!r}: option 'cancel': {exc}") from None
        compiled("cancel", expr)
        cancels.append((rule, expr))
    idem = compiled("idempotency", config["idempotency"]) if config.get("idempotency") else None
    return CompiledFunction(config, triggers, cancels, idem)


def _cancel_expression(rule: dict[str, Any]) -> str:
    parts = [match_to_expression(rule["match"], what="match")] if rule.get("match") else []
    if rule.get("if"):
        parts.append(f"({rule['if']})")
    return " && ".join(parts) or "true"


def wait_spec(kind: str, event_name: str, expression: str, trigger: dict[str, Any], expires_at: int,
              step_key: str | None = None) -> WaitSpec:
    eq = as_equality(expression)
    if eq is None:
        return WaitSpec(kind, event_name, expression, None, None, expires_at, step_key)
    value = jsonutil.dumps(lookup(trigger, eq.trigger_path))
    return WaitSpec(kind, event_name, None, eq.incoming_path, value, expires_at, step_key)


class Registry:
    """Functions by trigger event name, rebuilt when the stored configurations change."""

    def __init__(self, configs: Iterable[dict[str, Any]] = ()) -> None:
        self.functions: dict[tuple[str, str], CompiledFunction] = {}
        self.by_event: dict[str, list[tuple[CompiledFunction, Expression | None]]] = {}
        for config in configs:
            self.add(compile_function(config))

    def add(self, fn: CompiledFunction) -> None:
        self.functions[(fn.app_id, fn.id)] = fn
        for event_name, expr in fn.triggers:
            self.by_event.setdefault(event_name, []).append((fn, expr))

    def get(self, app_id: str, function_id: str) -> CompiledFunction | None:
        return self.functions.get((app_id, function_id))

    def by_slug(self, slug: str) -> CompiledFunction | None:
        return next((f for f in self.functions.values() if f.slug == slug), None)

    def plan(self, event: EventRecord, now_ms: int) -> list[RunPlan]:
        """The runs an event starts (before idempotency, which the store checks)."""
        payload = event.to_dict()
        if event.name == FUNCTION_INVOKED:
            target = self.by_slug(str(lookup(payload, "data._inngest.fn_id")))
            return [self._plan(target, event, payload, now_ms)] if target else []
        plans = []
        for fn, expr in self.by_event.get(event.name, ()):
            if expr is None or expr.matches({"event": payload}):
                plans.append(self._plan(fn, event, payload, now_ms))
        return plans

    def _plan(self, fn: CompiledFunction, event: EventRecord, payload: dict[str, Any], now: int) -> RunPlan:
        plan = RunPlan(new_ulid(now), fn.app_id, fn.id, [event.id], now, now)
        correlation = lookup(payload, "data._inngest.correlation_id")
        if event.name == FUNCTION_INVOKED and isinstance(correlation, str):
            plan.parent_run_id = correlation.split(".", 1)[0]
        if fn.idempotency is not None:
            plan.idempotency_key = f"{fn.slug}:{fn.idempotency.evaluate({'event': payload})!r}"
        for rule, expr in fn.cancels:
            expires = now + (rule.get("timeout_ms") or 366 * 86_400_000)
            plan.cancel_waits.append(wait_spec("cancel", rule["event"], expr, payload, expires))
        timeouts = fn.config.get("timeouts") or {}
        if timeouts.get("start_ms"):
            plan.start_deadline = now + timeouts["start_ms"]
        plan.finish_timeout_ms = timeouts.get("finish_ms")
        return plan
