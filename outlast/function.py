"""Functions: a handler plus its validated configuration.

The configuration is a plain JSON-able dict (stored in the database so that any process can
route events to functions without importing user code); `core.registry` compiles it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from outlast.core.cron import parse_schedule
from outlast.core.durations import format_ms, to_ms
from outlast.errors import FunctionConfigError
from outlast.options import (
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

MAX_TRIGGERS = 10
MAX_RETRIES = 20
MAX_CANCELS = 5
MAX_CONCURRENCY_LIMITS = 2
MAX_BATCH_SIZE = 1000
DEFAULT_RETRIES = 4
SECOND_MS = 1000
DAY_MS = 86_400_000
YEAR_MS = 366 * DAY_MS
#: options Inngest does not allow together with batching
NOT_WITH_BATCH = ("cancel", "debounce", "singleton", "priority", "idempotency")

Trigger = str | TriggerEvent | TriggerCron
Handler = Callable[..., Any]
Fail = Callable[[str, str], FunctionConfigError]


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
    failure_of: str | None = None, concurrency: Concurrency | list[Concurrency] | None = None,
    throttle: Throttle | None = None, rate_limit: RateLimit | None = None, debounce: Debounce | None = None,
    batch: Batch | None = None, priority: Priority | None = None, singleton: Singleton | None = None,
) -> dict[str, Any]:
    """Validate options and return the stored form; raise FunctionConfigError naming the option."""
    if not isinstance(id, str) or not id.strip():
        raise FunctionConfigError("a function needs a non-empty string id")

    def fail(option: str, problem: str) -> FunctionConfigError:
        return FunctionConfigError(f"function {id!r}: option {option!r}: {problem}")

    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise fail("retries", f"must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")
    config: dict[str, Any] = {
        "id": id, "app_id": app_id, "name": name or id, "retries": retries,
        "triggers": _triggers(trigger, fail), "cancel": _cancels(cancel or [], fail),
        "timeouts": _timeouts(timeouts, fail), "idempotency": idempotency, "failure_of": failure_of,
        "concurrency": _concurrency(concurrency, fail), "throttle": _throttle(throttle, fail),
        "rate_limit": _rate_limit(rate_limit, fail), "debounce": _debounce(debounce, fail),
        "batch": _batch(batch, fail), "priority": _priority(priority, fail), "singleton": _singleton(singleton, fail),
    }
    if config["batch"]:
        clash = next((o for o in NOT_WITH_BATCH if config[o]), None)
        if clash:
            raise fail("batch", f"cannot be combined with {clash!r}")
    from outlast.core.registry import compile_function  # validates every expression

    compile_function(config)
    return config


def _limit(value: Any, option: str, fail: Fail, most: int = 100_000, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise fail(option, f"must be an integer from {least} to {most}, got {value!r}")
    return value


def _concurrency(value: Any, fail: Fail) -> list[dict[str, Any]]:
    items = [] if value is None else value if isinstance(value, list) else [value]
    if len(items) > MAX_CONCURRENCY_LIMITS:
        raise fail("concurrency", f"{len(items)} limits, at most {MAX_CONCURRENCY_LIMITS} are allowed")
    out = []
    for item in items:
        if not isinstance(item, Concurrency):
            raise fail("concurrency", f"expected Concurrency(limit=...), got {item!r}")
        if item.scope not in ("fn", "app", "account"):
            raise fail("concurrency.scope", f"must be 'fn', 'app' or 'account', got {item.scope!r}")
        out.append({"limit": _limit(item.limit, "concurrency.limit", fail), "key": item.key, "scope": item.scope})
    return out


def _throttle(value: Throttle | None, fail: Fail) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"limit": _limit(value.limit, "throttle.limit", fail),
            "period_ms": _duration(value.period, "throttle.period", fail, 7 * DAY_MS, SECOND_MS),
            "burst": _limit(value.burst, "throttle.burst", fail), "key": value.key}


def _rate_limit(value: RateLimit | None, fail: Fail) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"limit": _limit(value.limit, "rate_limit.limit", fail),
            "period_ms": _duration(value.period, "rate_limit.period", fail, DAY_MS, SECOND_MS), "key": value.key}


def _debounce(value: Debounce | None, fail: Fail) -> dict[str, Any] | None:
    if value is None:
        return None
    period = _duration(value.period, "debounce.period", fail, 7 * DAY_MS, SECOND_MS)
    timeout = _duration(value.timeout, "debounce.timeout", fail, 7 * DAY_MS, SECOND_MS)
    return {"period_ms": period, "timeout_ms": timeout, "key": value.key}


def _batch(value: Batch | None, fail: Fail) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"max_size": _limit(value.max_size, "batch.max_size", fail, MAX_BATCH_SIZE, 2),
            "timeout_ms": _duration(value.timeout, "batch.timeout", fail, DAY_MS, SECOND_MS),
            "key": value.key, "if": value.if_}


def _priority(value: Priority | None, fail: Fail) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Priority) or not isinstance(value.run, str):
        raise fail("priority", f"expected Priority(run='<expression>'), got {value!r}")
    return {"run": value.run}


def _singleton(value: Singleton | None, fail: Fail) -> dict[str, Any] | None:
    if value is None:
        return None
    if value.mode not in ("skip", "cancel"):
        raise fail("singleton.mode", f"must be 'skip' or 'cancel', got {value.mode!r}")
    return {"key": value.key, "mode": value.mode}


def _triggers(trigger: Any, fail: Fail) -> list[dict[str, Any]]:
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
            try:
                parse_schedule(item.cron)
            except ValueError as exc:
                raise fail("trigger.cron", str(exc)) from None
            jitter = _duration(item.jitter, "trigger.jitter", fail, DAY_MS) if item.jitter is not None else None
            out.append({"cron": item.cron, "jitter_ms": jitter})
        else:
            raise fail("trigger", f"expected an event name, TriggerEvent or TriggerCron, got {item!r}")
    return out


def _cancels(cancels: list[Cancel], fail: Fail) -> list[dict[str, Any]]:
    if len(cancels) > MAX_CANCELS:
        raise fail("cancel", f"{len(cancels)} cancel rules, the limit is {MAX_CANCELS}")
    out = []
    for rule in cancels:
        if not isinstance(rule, Cancel) or not isinstance(rule.event, str) or not rule.event:
            raise fail("cancel", f"expected Cancel(event=...), got {rule!r}")
        out.append({"event": rule.event, "match": rule.match, "if": rule.if_,
                    "timeout_ms": _duration(rule.timeout, "cancel.timeout", fail, YEAR_MS)})
    return out


def _timeouts(timeouts: Timeouts | None, fail: Fail) -> dict[str, Any]:
    if timeouts is None:
        return {}
    return {"start_ms": _duration(timeouts.start, "timeouts.start", fail, YEAR_MS),
            "finish_ms": _duration(timeouts.finish, "timeouts.finish", fail, YEAR_MS)}


def _duration(value: Any, option: str, fail: Fail, most: int, least: int = 1) -> Any:
    if value is None:
        return None
    try:
        ms = to_ms(value, what=option)
    except ValueError as exc:
        raise fail(option, str(exc)) from None
    if not least <= ms <= most:
        raise fail(option, f"must be between {format_ms(least)} and {format_ms(most)}, got {format_ms(ms)}")
    return ms


__all__ = ["Function", "build_config"]
