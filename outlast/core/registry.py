"""The functions the engine knows, compiled once and indexed by the events that trigger them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from outlast.core.config import EventTrigger, FunctionConfig
from outlast.core.expressions import EVENT, EVENT_AND_ASYNC, Expression, ExpressionError, Result, compile_expression
from outlast.errors import FunctionConfigError

Fail = Callable[[str, str], FunctionConfigError]


@dataclass(slots=True, kw_only=True)
class CompiledFunction:
    config: FunctionConfig
    triggers: list[tuple[str, Expression | None]]
    #: each cancel rule with its compiled condition (None: any event of that name cancels)
    cancels: list[tuple[str, str | None, int | None]]
    idempotency: Expression | None = None
    #: option path (`concurrency.0`, `throttle`, ...) -> key expression
    keys: dict[str, Expression] = field(default_factory=dict)
    priority: Expression | None = None
    batch_if: Expression | None = None
    #: the run has flow-control keys or settings to plan (concurrency, throttle, rate limit,
    #: debounce, batch, singleton or priority)
    flow_control: bool = False
    #: nothing but the run itself to plan: no idempotency, cancel rule, timeout or flow control
    plain: bool = False

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def app_id(self) -> str:
        return self.config.app_id

    @property
    def slug(self) -> str:
        return self.config.slug


def _default_fail(config: FunctionConfig) -> Fail:
    return lambda option, problem: FunctionConfigError(f"function {config.id!r}: option {option!r}: {problem}")


def compile_function(config: FunctionConfig, *, fail: Fail | None = None) -> CompiledFunction:
    """Compile every expression of a configuration; an invalid one raises `fail(option, problem)`."""
    fail = fail or _default_fail(config)

    def compiled(option: str, source: str, result: Result = "any", variables: tuple[str, ...] = EVENT) -> Expression:
        """Conditions must give a boolean; only a cancel rule also sees the incoming event (`async`)."""
        try:
            return compile_expression(source, variables=variables, result=result)
        except ExpressionError as exc:
            raise fail(option, str(exc)) from None

    triggers = [
        (t.event, compiled("trigger.if_", t.expression, "bool") if t.expression else None)
        for t in config.triggers
        if isinstance(t, EventTrigger)
    ]
    cancels = []
    for rule in config.cancel:
        if rule.expression:
            compiled("cancel", rule.expression, "bool", EVENT_AND_ASYNC)
        cancels.append((rule.event, rule.expression, rule.timeout_ms))
    keys = {f"concurrency.{i}": compiled("concurrency.key", c.key) for i, c in enumerate(config.concurrency) if c.key}
    for option in ("throttle", "rate_limit", "debounce", "batch", "singleton"):
        rule = getattr(config, option)
        if rule is not None and rule.key:
            keys[option] = compiled(f"{option}.key", rule.key)
    flow_control = bool(
        config.concurrency
        or config.throttle
        or config.rate_limit
        or config.debounce
        or config.batch
        or config.singleton
        or config.priority
    )
    return CompiledFunction(
        config=config,
        triggers=triggers,
        cancels=cancels,
        keys=keys,
        flow_control=flow_control,
        plain=not (flow_control or config.idempotency or cancels or config.timeouts),
        idempotency=compiled("idempotency", config.idempotency) if config.idempotency else None,
        priority=compiled("priority.run", config.priority, "number") if config.priority else None,
        batch_if=compiled("batch.if_", config.batch.expression, "bool")
        if config.batch and config.batch.expression
        else None,
    )


class Registry:
    """Functions by (app, id), by slug and by trigger event name; rebuilt when the stored set changes."""

    def __init__(
        self,
        configs: Iterable[FunctionConfig] = (),
        *,
        on_invalid: Callable[[FunctionConfig, Exception], None] | None = None,
    ) -> None:
        self.functions: dict[tuple[str, str], CompiledFunction] = {}
        self.slugs: dict[str, CompiledFunction] = {}
        self.by_event: dict[str, list[tuple[CompiledFunction, Expression | None]]] = {}
        for config in configs:
            try:
                self.add(compile_function(config))
            except FunctionConfigError as exc:  # stored by another version that accepted it
                if on_invalid is None:
                    raise
                on_invalid(config, exc)

    @property
    def has_concurrency_limits(self) -> bool:
        return any(f.config.concurrency for f in self.functions.values())

    def add(self, fn: CompiledFunction) -> None:
        self.functions[(fn.app_id, fn.id)] = fn
        self.slugs[fn.slug] = fn
        for event_name, expr in fn.triggers:
            self.by_event.setdefault(event_name, []).append((fn, expr))

    def get(self, app_id: str, function_id: str) -> CompiledFunction | None:
        return self.functions.get((app_id, function_id))

    def by_slug(self, slug: str) -> CompiledFunction | None:
        return self.slugs.get(slug)

    def apps(self) -> dict[str, list[CompiledFunction]]:
        """Every app with its functions."""
        out: dict[str, list[CompiledFunction]] = {}
        for fn in self.functions.values():
            out.setdefault(fn.app_id, []).append(fn)
        return out
