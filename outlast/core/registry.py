"""Compiled function configurations, indexed by trigger event, and the run planner.

The planner is the pure half of ingest: from an event and the functions' configurations it
decides which runs to create and with what keys. The store applies the plans atomically.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from outlast.core import jsonutil
from outlast.core.expressions import (
    Expression,
    ExpressionError,
    as_equality,
    compile_expression,
    key_value,
    lookup,
    match_to_expression,
)
from outlast.core.ids import new_ulid
from outlast.errors import FunctionConfigError
from outlast.events import FUNCTION_INVOKED, SCHEDULED_TIMER, EventRecord


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
    #: flow control, each with its key already evaluated for the triggering event
    concurrency: list[tuple[str, int]] = field(default_factory=list)
    throttle: tuple[str, int, int, int] | None = None  # key, limit, period_ms, burst
    rate_limit: tuple[str, int, int] | None = None  # key, limit, period_ms
    debounce: tuple[str, int, int | None] | None = None  # key, period_ms, timeout_ms
    batch: tuple[str, int, int] | None = None  # key, max_size, timeout_ms
    singleton: tuple[str, str] | None = None  # key, mode


@dataclass
class CompiledFunction:
    config: dict[str, Any]
    triggers: list[tuple[str, Expression | None]]
    cancels: list[tuple[dict[str, Any], str]]
    idempotency: Expression | None
    keys: dict[str, Expression] = field(default_factory=dict)  # option path -> key expression
    priority: Expression | None = None
    batch_if: Expression | None = None

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
    keys = {}
    for i, limit in enumerate(config.get("concurrency") or []):
        if limit.get("key"):
            keys[f"concurrency.{i}"] = compiled("concurrency.key", limit["key"])
    for option in ("throttle", "rate_limit", "debounce", "batch", "singleton"):
        if (config.get(option) or {}).get("key"):
            keys[option] = compiled(f"{option}.key", config[option]["key"])
    priority = compiled("priority.run", config["priority"]["run"]) if config.get("priority") else None
    batch = config.get("batch") or {}
    batch_if = compiled("batch.if_", batch["if"]) if batch.get("if") else None
    return CompiledFunction(config, triggers, cancels, idem, keys, priority, batch_if)


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

    @property
    def has_concurrency_limits(self) -> bool:
        return any(f.config.get("concurrency") for f in self.functions.values())

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
        if event.name in (FUNCTION_INVOKED, SCHEDULED_TIMER):
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
        _flow_control(fn, plan, {"event": payload}, now)
        return plan


PRIORITY_LIMIT_S = 43_200


def _flow_control(fn: CompiledFunction, plan: RunPlan, variables: dict[str, Any], now: int) -> None:
    """Evaluate the function's flow-control keys for this event into the plan."""
    cfg = fn.config

    def key(option: str, scope: str = "fn") -> str:
        expr = fn.keys.get(option)
        value = key_value(expr, variables["event"]) if expr else ""
        prefix = {"fn": fn.slug, "app": f"app:{fn.app_id}", "account": "account"}[scope]
        return f"{prefix}:{option.split('.')[0]}:{expr.source if expr else ''}={value}"

    for i, limit in enumerate(cfg.get("concurrency") or []):
        plan.concurrency.append((key(f"concurrency.{i}", limit["scope"]), limit["limit"]))
    if t := cfg.get("throttle"):
        plan.throttle = (key("throttle"), t["limit"], t["period_ms"], t["burst"])
    if r := cfg.get("rate_limit"):
        plan.rate_limit = (key("rate_limit"), r["limit"], r["period_ms"])
    if d := cfg.get("debounce"):
        plan.debounce = (key("debounce"), d["period_ms"], d["timeout_ms"])
    if (b := cfg.get("batch")) and (fn.batch_if is None or fn.batch_if.matches(variables)):
        plan.batch = (key("batch"), b["max_size"], b["timeout_ms"])
    if s := cfg.get("singleton"):
        plan.singleton = (key("singleton"), s["mode"])
    if fn.priority is not None:
        try:
            seconds = fn.priority.evaluate(variables)
        except Exception:
            seconds = 0
        if isinstance(seconds, int) and not isinstance(seconds, bool):
            plan.due_at = now - 1000 * max(-PRIORITY_LIMIT_S, min(PRIORITY_LIMIT_S, seconds))
