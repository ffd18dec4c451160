"""Functions: a handler plus its validated configuration.

The configuration is a plain JSON-able dict (stored in the database so that any process can
route events to functions without importing user code); `core.registry` compiles it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from outlast.core.durations import to_ms
from outlast.errors import FunctionConfigError
from outlast.options import Cancel, TriggerCron, TriggerEvent, Timeouts

MAX_TRIGGERS = 10
MAX_RETRIES = 20
MAX_CANCELS = 5
DEFAULT_RETRIES = 4
YEAR_MS = 366 * 86_400_000

Trigger = str | TriggerEvent | TriggerCron
Handler = Callable[..., Any]


class Function:
    """A registered function. Only the engine calls it; pass it to `step.invoke`."""

    def __init__(self, handler: Handler, config: dict[str, Any]) -> None:
        self.handler = handler
        self.config = config
        self.id: str = config["id"]
        self.app_id: str = config["app_id"]
        self.name: str = config["name"]
        self.is_async = inspect.iscoroutinefunction(handler)
        self.on_failure: Function | None = None

    @property
    def slug(self) -> str:
        """Inngest's composite id, `<app_id>-<fn_id>`, used in system events."""
        return f"{self.app_id}-{self.id}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"function {self.id!r} is run by the engine; send an event or use step.invoke")

    def __repr__(self) -> str:
        return f"<outlast.Function {self.id!r}>"


def build_config(
    app_id: str, *, id: str, trigger: Trigger | list[Trigger] | None, name: str | None, retries: int,
    cancel: list[Cancel] | None = None, timeouts: Timeouts | None = None, idempotency: str | None = None,
    failure_of: str | None = None, **flow: Any,
) -> dict[str, Any]:
    """Validate options and return the stored form; raise FunctionConfigError naming the option."""
    if not isinstance(id, str) or not id.strip():
        raise FunctionConfigError("a function needs a non-empty string id")

    def fail(option: str, problem: str) -> FunctionConfigError:
        return FunctionConfigError(f"function {id!r}: option {option!r}: {problem}")

    unsupported = [k for k, v in flow.items() if v is not None]
    if unsupported:
        raise fail(unsupported[0], "not supported by this version of Outlast yet")
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise fail("retries", f"must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")
    config: dict[str, Any] = {
        "id": id, "app_id": app_id, "name": name or id, "retries": retries,
        "triggers": _triggers(trigger, fail), "cancel": _cancels(cancel or [], fail),
        "timeouts": _timeouts(timeouts, fail), "idempotency": idempotency, "failure_of": failure_of,
    }
    from outlast.core.registry import compile_function  # validates every expression

    compile_function(config)
    return config


def _triggers(trigger: Any, fail: Callable[[str, str], FunctionConfigError]) -> list[dict[str, Any]]:
    items = trigger if isinstance(trigger, list) else [] if trigger is None else [trigger]
    if len(items) > MAX_TRIGGERS:
        raise fail("trigger", f"{len(items)} triggers, the limit is {MAX_TRIGGERS}")
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            item = TriggerEvent(item)
        if isinstance(item, TriggerEvent):
            if not isinstance(item.event, str) or not item.event.strip():
                raise fail("trigger", "an event trigger needs a non-empty event name")
            out.append({"event": item.event, "if": item.if_})
        elif isinstance(item, TriggerCron):
            raise fail("trigger", "cron triggers are not supported by this version of Outlast yet")
        else:
            raise fail("trigger", f"expected an event name, TriggerEvent or TriggerCron, got {item!r}")
    return out


def _cancels(cancels: list[Cancel], fail: Callable[[str, str], FunctionConfigError]) -> list[dict[str, Any]]:
    if len(cancels) > MAX_CANCELS:
        raise fail("cancel", f"{len(cancels)} cancel rules, the limit is {MAX_CANCELS}")
    out = []
    for rule in cancels:
        if not isinstance(rule, Cancel) or not isinstance(rule.event, str) or not rule.event:
            raise fail("cancel", f"expected Cancel(event=...), got {rule!r}")
        out.append({"event": rule.event, "match": rule.match, "if": rule.if_,
                    "timeout_ms": _duration(rule.timeout, "cancel.timeout", fail, YEAR_MS)})
    return out


def _timeouts(timeouts: Timeouts | None, fail: Callable[[str, str], FunctionConfigError]) -> dict[str, Any]:
    if timeouts is None:
        return {}
    return {"start_ms": _duration(timeouts.start, "timeouts.start", fail, YEAR_MS),
            "finish_ms": _duration(timeouts.finish, "timeouts.finish", fail, YEAR_MS)}


def _duration(value: Any, option: str, fail: Callable[[str, str], FunctionConfigError], most: int) -> int | None:
    if value is None:
        return None
    try:
        ms = to_ms(value, what=option)
    except ValueError as exc:
        raise fail(option, str(exc)) from None
    if not 0 < ms <= most:
        raise fail(option, f"must be between 1ms and {most // 86_400_000} days")
    return ms


def is_async_callable(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


__all__ = ["Function", "build_config", "is_async_callable"]
