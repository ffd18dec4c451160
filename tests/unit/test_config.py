"""FunctionConfig: the one place that decides what can be honoured, and its stored form."""

from __future__ import annotations

from dataclasses import replace

import pytest

from outlast.core.config import (
    BatchRule,
    CancelRule,
    ConcurrencyRule,
    CronTrigger,
    DebounceRule,
    EventTrigger,
    FunctionConfig,
    RateLimitRule,
    Runtime,
    SingletonRule,
    ThrottleRule,
    TimeoutRule,
)
from outlast.core.validation import validate
from outlast.errors import FunctionConfigError

BASE = FunctionConfig(app_id="shop", id="fn", name="fn", triggers=(EventTrigger(event="shop/x"),))


def test_a_full_configuration_survives_its_stored_form() -> None:
    config = replace(
        BASE,
        retries=3,
        triggers=(
            EventTrigger(event="shop/x", expression="event.data.n > 1"),
            CronTrigger(cron="TZ=Europe/Paris 0 9 * * *", jitter_ms=5000),
        ),
        cancel=(CancelRule(event="shop/stop", expression="event.data.id == async.data.id", timeout_ms=60_000),),
        timeouts=TimeoutRule(start_ms=1000, finish_ms=None),
        idempotency="event.data.id",
        concurrency=(ConcurrencyRule(limit=2, key="event.data.user", scope="app"),),
        throttle=ThrottleRule(limit=1, period_ms=1000, burst=2, key=None),
        rate_limit=RateLimitRule(limit=5, period_ms=60_000),
        debounce=DebounceRule(period_ms=5000, timeout_ms=60_000),
        priority="event.data.vip ? 60 : 0",
        singleton=SingletonRule(key="event.data.user", mode="cancel"),
        runtime=Runtime(kind="http", url="http://app/api/inngest"),
    )
    assert FunctionConfig.from_json(validate(config).to_json()) == config


def test_the_first_schemas_cancel_rules_with_match_are_read() -> None:
    old_rule = {"event": "e/stop", "match": "data.id", "if": "async.data.ok", "timeout_ms": None}
    raw = {**BASE.to_json(), "cancel": [old_rule]}
    del raw["runtime"]
    config = FunctionConfig.from_json(raw)
    expected = CancelRule(event="e/stop", expression="event.data.id == async.data.id && (async.data.ok)")
    assert config.cancel == (expected,)
    assert config.runtime == Runtime(kind="local")


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"retries": 21}, "retries"),
        ({"triggers": ()}, "trigger"),
        ({"triggers": (CronTrigger(cron="not a cron"),)}, "trigger.cron"),
        ({"concurrency": (ConcurrencyRule(limit=0),)}, "concurrency.limit"),
        ({"concurrency": (ConcurrencyRule(limit=1, scope="galaxy"),)}, "concurrency.scope"),
        ({"rate_limit": RateLimitRule(limit=1, period_ms=2 * 86_400_000)}, "rate_limit.period"),
        ({"debounce": DebounceRule(period_ms=10)}, "debounce.period"),
        ({"batch": BatchRule(max_size=1, timeout_ms=1000)}, "batch.max_size"),
        ({"batch": BatchRule(max_size=5, timeout_ms=1000), "idempotency": "event.id"}, "batch"),
        ({"singleton": SingletonRule(mode="queue")}, "singleton.mode"),
        ({"priority": "event.data."}, "priority.run"),
        ({"throttle": ThrottleRule(limit=1, period_ms=1000, key="event.data.(")}, "throttle.key"),
    ],
)
def test_what_cannot_be_honoured_is_refused_naming_function_and_option(change: dict[str, object], option: str) -> None:
    with pytest.raises(FunctionConfigError) as caught:
        validate(replace(BASE, **change))  # type: ignore[arg-type]
    assert f"function 'fn': option '{option}'" in str(caught.value)


def test_a_caller_may_name_options_in_its_own_terms() -> None:
    with pytest.raises(FunctionConfigError, match=r"option 'rateLimit\.period'"):
        validate(
            replace(BASE, rate_limit=RateLimitRule(limit=1, period_ms=1)),
            field_name=lambda o: o.replace("rate_limit", "rateLimit"),
        )
