"""Functions: a handler plus its configuration, built from the Python option types.

The options are translated into a `FunctionConfig` (durations parsed, `match` shorthands
expanded) and validated there, in the one place that decides what the engine can honour.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypedDict

from outlast.core import jsonutil
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
from outlast.events import Event, EventType, event_name
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

Trigger = str | EventType[Any] | TriggerEvent | TriggerCron
Handler = Callable[..., Any]


class Function:
    """A registered function. Only the engine calls it; pass it to `step.invoke`."""

    def __init__(
        self, handler: Handler, config: FunctionConfig, *, event_types: dict[str, EventType[Any]] | None = None
    ) -> None:
        self.handler = handler
        self.config = config
        self.is_async = inspect.iscoroutinefunction(handler)
        self.on_failure: Function | None = None
        #: the typed triggers' event types, by event name
        self.event_types = event_types or {}

    def parse_events(self, events: list[Event]) -> list[Event]:
        """The run's events with the data of typed ones as their models; EventValidationError
        (the run fails at once) naming the field and the event id of the first that does not fit."""
        if not self.event_types:
            return events
        return [e if (kind := self.event_types.get(e.name)) is None else kind.typed(e) for e in events]

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


class FunctionOptions(TypedDict, total=False):
    """A function's options, written once: `Outlast.function` takes them as keywords (so editors
    complete them and mypy checks them) and `build_config` translates them. API.md says what each
    one means; `id` and `on_failure` are the decorator's own keywords."""

    trigger: Trigger | list[Trigger] | None
    name: str | None
    retries: int
    cancel: list[Cancel] | None
    timeouts: Timeouts | None
    idempotency: str | None
    concurrency: Concurrency | list[Concurrency] | None
    throttle: Throttle | None
    rate_limit: RateLimit | None
    debounce: Debounce | None
    batch: Batch | None
    priority: Priority | None
    singleton: Singleton | None
    backoff: Backoff | None


#: the option types the rule options take, with the form an error shows, in the order they are checked
_RULE_TYPES: tuple[tuple[str, type, str], ...] = (
    ("throttle", Throttle, "Throttle(limit=..., period=...)"),
    ("rate_limit", RateLimit, "RateLimit(limit=..., period=...)"),
    ("debounce", Debounce, "Debounce(period=...)"),
    ("batch", Batch, "Batch(...)"),
    ("priority", Priority, "Priority(run='<expression>')"),
    ("singleton", Singleton, "Singleton(...)"),
    ("timeouts", Timeouts, "Timeouts(...)"),
    ("backoff", Backoff, "Backoff(initial=..., factor=..., max=...)"),
)


class _Options:
    """Translates one function's option values, naming the option in every error."""

    def __init__(self, fn_id: str, options: FunctionOptions) -> None:
        self.fn_id = fn_id
        self.options = options
        unknown = sorted(set(options) - FunctionOptions.__optional_keys__)
        if unknown:
            known = ", ".join(["id", *FunctionOptions.__annotations__, "on_failure"])
            raise TypeError(f"function {fn_id!r}: unknown option {unknown[0]!r}; the options are {known}")
        for option, kind, example in _RULE_TYPES:
            if options.get(option) is not None:
                self.expect(options.get(option), kind, option, example)

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

    def required_ms(self, value: Any, option: str) -> int:
        ms = self.ms(value, option)
        if ms is None:
            raise self.fail(option, "a duration is required")
        return ms

    def triggers(self) -> tuple[ConfigTrigger, ...]:
        trigger = self.options.get("trigger")
        items = trigger if isinstance(trigger, list) else [] if trigger is None else [trigger]
        out: list[ConfigTrigger] = []
        for item in items:
            if isinstance(item, (str, EventType)):
                item = TriggerEvent(item)
            if isinstance(item, TriggerEvent):
                out.append(EventTrigger(event=event_name(item.event), expression=item.if_, schema=_schema(item.event)))
            elif isinstance(item, TriggerCron):
                out.append(CronTrigger(cron=item.cron, jitter_ms=self.ms(item.jitter, "trigger.jitter")))
            else:
                raise self.fail("trigger", f"expected an event name, TriggerEvent or TriggerCron, got {item!r}")
        return tuple(out)

    def cancels(self) -> tuple[CancelRule, ...]:
        cancels = self.options.get("cancel") or []
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
                    event=event_name(rule.event),
                    expression=" && ".join(parts) or None,
                    timeout_ms=self.ms(rule.timeout, "cancel.timeout"),
                )
            )
        return tuple(out)

    def concurrency(self) -> tuple[ConcurrencyRule, ...]:
        value = self.options.get("concurrency")
        items = [] if value is None else value if isinstance(value, list) else [value]
        for item in items:
            self.expect(item, Concurrency, "concurrency", "Concurrency(limit=...)")
        return tuple(ConcurrencyRule(limit=c.limit, key=c.key, scope=c.scope) for c in items)

    def timeouts(self) -> TimeoutRule | None:
        if (t := self.options.get("timeouts")) is None:
            return None
        return TimeoutRule(start_ms=self.ms(t.start, "timeouts.start"), finish_ms=self.ms(t.finish, "timeouts.finish"))

    def throttle(self) -> ThrottleRule | None:
        if (t := self.options.get("throttle")) is None:
            return None
        return ThrottleRule(
            limit=t.limit, period_ms=self.required_ms(t.period, "throttle.period"), burst=t.burst, key=t.key
        )

    def rate_limit(self) -> RateLimitRule | None:
        if (r := self.options.get("rate_limit")) is None:
            return None
        return RateLimitRule(limit=r.limit, period_ms=self.required_ms(r.period, "rate_limit.period"), key=r.key)

    def debounce(self) -> DebounceRule | None:
        if (d := self.options.get("debounce")) is None:
            return None
        return DebounceRule(
            period_ms=self.required_ms(d.period, "debounce.period"),
            timeout_ms=self.ms(d.timeout, "debounce.timeout"),
            key=d.key,
        )

    def batch(self) -> BatchRule | None:
        if (b := self.options.get("batch")) is None:
            return None
        return BatchRule(
            max_size=b.max_size, timeout_ms=self.required_ms(b.timeout, "batch.timeout"), key=b.key, expression=b.if_
        )

    def priority(self) -> str | None:
        if (p := self.options.get("priority")) is None:
            return None
        if not isinstance(p.run, str):
            raise self.fail("priority", f"expected Priority(run='<expression>'), got {p!r}")
        return p.run

    def singleton(self) -> SingletonRule | None:
        s = self.options.get("singleton")
        return None if s is None else SingletonRule(key=s.key, mode=s.mode)

    def backoff(self) -> BackoffRule | None:
        if (b := self.options.get("backoff")) is None:
            return None
        try:
            return backoff_rule(initial=b.initial, factor=b.factor, max=b.max, jitter=b.jitter)
        except ValueError as exc:
            raise self.fail("backoff", str(exc)) from None


def _schema(event: str | EventType[Any]) -> str | None:
    """A typed trigger's JSON Schema as JSON text (stored with the function, shown by
    `outlast functions --json` and the dashboard)."""
    return jsonutil.dumps(event.schema) if isinstance(event, EventType) else None


def event_types(fn_id: str, options: FunctionOptions, known: dict[str, EventType[Any]]) -> dict[str, EventType[Any]]:
    """The event types of a function's typed triggers, by name. FunctionConfigError when two of
    them, or one of them and one in `known` (the app's other functions'), give one name two models."""
    trigger = options.get("trigger")
    items = trigger if isinstance(trigger, list) else [] if trigger is None else [trigger]
    found: dict[str, EventType[Any]] = {}
    for item in items:
        kind = item.event if isinstance(item, TriggerEvent) else item
        if not isinstance(kind, EventType):
            continue
        other = found.get(kind.name) or known.get(kind.name)
        if other is not None and other.model is not kind.model:
            raise FunctionConfigError(
                f"function {fn_id!r}: option 'trigger': event {kind.name!r} is typed with two models, "
                f"{other.model.__name__} and {kind.model.__name__}"
            )
        found[kind.name] = kind
    return found


def build_config(app_id: str, id: str, options: FunctionOptions, *, failure_of: str | None = None) -> FunctionConfig:
    """Translate and validate options; raise FunctionConfigError naming the function and option
    (TypeError for an option that does not exist). `failure_of` marks an on-failure handler."""
    from outlast.core.validation import validate  # compiles CEL and cron: loaded when a function is defined

    if not isinstance(id, str) or not id.strip():
        raise FunctionConfigError("a function needs a non-empty string id")
    o = _Options(id, options)
    priority = o.priority()  # checked with the other option types, before any is translated
    return validate(
        FunctionConfig(
            app_id=app_id,
            id=id,
            name=options.get("name") or id,
            retries=options.get("retries", DEFAULT_RETRIES),
            triggers=o.triggers(),
            cancel=o.cancels(),
            idempotency=options.get("idempotency"),
            failure_of=failure_of,
            timeouts=o.timeouts(),
            concurrency=o.concurrency(),
            throttle=o.throttle(),
            rate_limit=o.rate_limit(),
            debounce=o.debounce(),
            batch=o.batch(),
            priority=priority,
            singleton=o.singleton(),
            backoff=o.backoff(),
        )
    )


__all__ = ["Function", "FunctionOptions", "build_config", "event_types"]
