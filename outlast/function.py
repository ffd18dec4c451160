"""Functions: a handler plus its configuration, built from the Python option types.

The options are translated into a `FunctionConfig` (durations parsed, `match` shorthands
expanded) and validated there, in the one place that decides what the engine can honour.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from outlast.core.config import (
    DEFAULT_RETRIES,
    BatchRule,
    CancelRule,
    ConcurrencyRule,
    CronTrigger,
    DebounceRule,
    EventTrigger,
    FunctionConfig,
    RateLimitRule,
    SingletonRule,
    ThrottleRule,
    TimeoutRule,
)
from outlast.core.config import Trigger as ConfigTrigger
from outlast.core.durations import to_ms
from outlast.core.expressions import ExpressionError, match_to_expression
from outlast.core.retry import BackoffRule, backoff_rule
from outlast.errors import FunctionConfigError
from outlast.options import (
    Backoff,
    Batch,
    Cancel,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
    TriggerCron,
    TriggerEvent,
)

Trigger = str | TriggerEvent | TriggerCron
Handler = Callable[..., Any]


class Function:
    """A registered function. Only the engine calls it; pass it to `step.invoke`."""

    def __init__(self, handler: Handler, config: FunctionConfig) -> None:
        self.handler = handler
        self.config = config
        self.is_async = inspect.iscoroutinefunction(handler)
        self.on_failure: Function | None = None

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def app_id(self) -> str:
        return self.config.app_id

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def slug(self) -> str:
        """Inngest's composite id, `<app_id>-<fn_id>`, used in system events."""
        return self.config.slug

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"function {self.id!r} is run by the engine; send an event or use step.invoke")

    def __repr__(self) -> str:
        return f"<outlast.Function {self.id!r}>"


class _Options:
    """Translates one function's option values, naming the option in every error."""

    def __init__(self, fn_id: str) -> None:
        self.fn_id = fn_id

    def fail(self, option: str, problem: str) -> FunctionConfigError:
        return FunctionConfigError(f"function {self.fn_id!r}: option {option!r}: {problem}")

    def expect(self, value: Any, kind: type, option: str, example: str) -> None:
        if not isinstance(value, kind):
            raise self.fail(option, f"expected {example}, got {value!r}")

    def ms(self, value: Any, option: str) -> int | None:
        if value is None:
            return None
        try:
            return to_ms(value, what=option)
        except ValueError as exc:
            raise self.fail(option, str(exc).removeprefix(f"{option}: ")) from None

    def backoff(self, value: Backoff) -> BackoffRule:
        try:
            return backoff_rule(initial=value.initial, factor=value.factor, max=value.max, jitter=value.jitter)
        except ValueError as exc:
            raise self.fail("backoff", str(exc)) from None

    def required_ms(self, value: Any, option: str) -> int:
        ms = self.ms(value, option)
        if ms is None:
            raise self.fail(option, "a duration is required")
        return ms

    def triggers(self, trigger: Any) -> tuple[ConfigTrigger, ...]:
        items = trigger if isinstance(trigger, list) else [] if trigger is None else [trigger]
        out: list[ConfigTrigger] = []
        for item in items:
            if isinstance(item, str):
                item = TriggerEvent(item)
            if isinstance(item, TriggerEvent):
                out.append(EventTrigger(event=item.event, expression=item.if_))
            elif isinstance(item, TriggerCron):
                out.append(CronTrigger(cron=item.cron, jitter_ms=self.ms(item.jitter, "trigger.jitter")))
            else:
                raise self.fail("trigger", f"expected an event name, TriggerEvent or TriggerCron, got {item!r}")
        return tuple(out)

    def cancels(self, cancels: Any) -> tuple[CancelRule, ...]:
        if not isinstance(cancels, (list, tuple)):
            raise self.fail("cancel", f"expected a list of Cancel(...), got {cancels!r}")
        out = []
        for rule in cancels:
            self.expect(rule, Cancel, "cancel", "Cancel(event=...)")
            parts = []
            try:
                if rule.match:
                    parts.append(match_to_expression(rule.match, what="match"))
            except ExpressionError as exc:
                raise self.fail("cancel.match", str(exc)) from None
            if rule.if_:
                parts.append(f"({rule.if_})")
            out.append(
                CancelRule(
                    event=rule.event,
                    expression=" && ".join(parts) or None,
                    timeout_ms=self.ms(rule.timeout, "cancel.timeout"),
                )
            )
        return tuple(out)

    def concurrency(self, value: Any) -> tuple[ConcurrencyRule, ...]:
        items = [] if value is None else value if isinstance(value, list) else [value]
        for item in items:
            self.expect(item, Concurrency, "concurrency", "Concurrency(limit=...)")
        return tuple(ConcurrencyRule(limit=c.limit, key=c.key, scope=c.scope) for c in items)


def build_config(
    app_id: str,
    *,
    id: str,
    trigger: Trigger | list[Trigger] | None,
    name: str | None = None,
    retries: int = DEFAULT_RETRIES,
    cancel: list[Cancel] | None = None,
    timeouts: Timeouts | None = None,
    idempotency: str | None = None,
    failure_of: str | None = None,
    concurrency: Concurrency | list[Concurrency] | None = None,
    throttle: Throttle | None = None,
    rate_limit: RateLimit | None = None,
    debounce: Debounce | None = None,
    batch: Batch | None = None,
    priority: Priority | None = None,
    singleton: Singleton | None = None,
    backoff: Backoff | None = None,
) -> FunctionConfig:
    """Translate and validate options; raise FunctionConfigError naming the function and option."""
    from outlast.core.validation import validate  # compiles CEL and cron: loaded when a function is defined

    if not isinstance(id, str) or not id.strip():
        raise FunctionConfigError("a function needs a non-empty string id")
    o = _Options(id)
    for value, kind, option, example in (
        (throttle, Throttle, "throttle", "Throttle(limit=..., period=...)"),
        (rate_limit, RateLimit, "rate_limit", "RateLimit(limit=..., period=...)"),
        (debounce, Debounce, "debounce", "Debounce(period=...)"),
        (batch, Batch, "batch", "Batch(...)"),
        (priority, Priority, "priority", "Priority(run='<expression>')"),
        (singleton, Singleton, "singleton", "Singleton(...)"),
        (timeouts, Timeouts, "timeouts", "Timeouts(...)"),
        (backoff, Backoff, "backoff", "Backoff(initial=..., factor=..., max=...)"),
    ):
        if value is not None:
            o.expect(value, kind, option, example)
    if priority is not None and not isinstance(priority.run, str):
        raise o.fail("priority", f"expected Priority(run='<expression>'), got {priority!r}")
    return validate(
        FunctionConfig(
            app_id=app_id,
            id=id,
            name=name or id,
            retries=retries,
            triggers=o.triggers(trigger),
            cancel=o.cancels(cancel or []),
            idempotency=idempotency,
            failure_of=failure_of,
            timeouts=None
            if timeouts is None
            else TimeoutRule(
                start_ms=o.ms(timeouts.start, "timeouts.start"), finish_ms=o.ms(timeouts.finish, "timeouts.finish")
            ),
            concurrency=o.concurrency(concurrency),
            throttle=None
            if throttle is None
            else ThrottleRule(
                limit=throttle.limit,
                period_ms=o.required_ms(throttle.period, "throttle.period"),
                burst=throttle.burst,
                key=throttle.key,
            ),
            rate_limit=None
            if rate_limit is None
            else RateLimitRule(
                limit=rate_limit.limit,
                period_ms=o.required_ms(rate_limit.period, "rate_limit.period"),
                key=rate_limit.key,
            ),
            debounce=None
            if debounce is None
            else DebounceRule(
                period_ms=o.required_ms(debounce.period, "debounce.period"),
                timeout_ms=o.ms(debounce.timeout, "debounce.timeout"),
                key=debounce.key,
            ),
            batch=None
            if batch is None
            else BatchRule(
                max_size=batch.max_size,
                timeout_ms=o.required_ms(batch.timeout, "batch.timeout"),
                key=batch.key,
                expression=batch.if_,
            ),
            priority=None if priority is None else priority.run,
            singleton=None if singleton is None else SingletonRule(key=singleton.key, mode=singleton.mode),
            backoff=None if backoff is None else o.backoff(backoff),
        )
    )


__all__ = ["Function", "build_config"]
