"""The planner: from an event and the registry, the runs to create with their keys."""

from __future__ import annotations

from dataclasses import replace

from outlast.core.config import (
    CancelRule,
    ConcurrencyRule,
    EventTrigger,
    FunctionConfig,
    RateLimitRule,
    SingletonRule,
    TimeoutRule,
)
from outlast.core.models import EventRecord
from outlast.core.planner import Planner
from outlast.core.registry import Registry

NOW = 1_700_000_000_000
FN = FunctionConfig(
    app_id="shop", id="fn", name="fn", triggers=(EventTrigger(event="shop/order", expression="event.data.total > 10"),)
)


def event(name: str = "shop/order", **data: object) -> EventRecord:
    return EventRecord(id="E1", name=name, data=dict(data), user={}, ts=NOW)


def planner(*configs: FunctionConfig) -> Planner:
    return Planner(Registry(configs))


def test_an_event_starts_the_functions_whose_trigger_and_condition_match() -> None:
    p = planner(FN, replace(FN, id="other", triggers=(EventTrigger(event="shop/other"),)))
    [plan] = p.plan(event(total=20), NOW)
    assert (plan.app_id, plan.function_id, plan.event_ids, plan.due_at) == ("shop", "fn", ["E1"], NOW)
    assert p.plan(event(total=5), NOW) == []
    assert p.plan(event(), NOW) == []  # a missing field is null, and null > 10 is false


def test_invoked_and_scheduled_events_start_exactly_their_target_function() -> None:
    p = planner(FN)
    invoked = event("inngest/function.invoked", _inngest={"fn_id": "shop-fn", "correlation_id": "R0.k"})
    [plan] = p.plan(invoked, NOW)
    assert plan.parent_run_id == "R0"
    assert p.plan(event("inngest/scheduled.timer", _inngest={"fn_id": "shop-nope"}), NOW) == []


def test_flow_control_keys_are_evaluated_for_the_event() -> None:
    config = replace(
        FN,
        concurrency=(ConcurrencyRule(limit=2, key="event.data.user"), ConcurrencyRule(limit=5, scope="account")),
        rate_limit=RateLimitRule(limit=1, period_ms=1000, key="event.data.user"),
        singleton=SingletonRule(key="event.data.user", mode="skip"),
        idempotency="event.data.user",
        timeouts=TimeoutRule(start_ms=1000, finish_ms=5000),
        cancel=(CancelRule(event="shop/stop", expression="event.data.user == async.data.user"),),
        priority="event.data.vip ? 30 : 0",
    )
    [plan] = planner(config).plan(event(total=20, user="u1", vip=True), NOW)
    assert plan.concurrency[0] == ("shop-fn:concurrency:event.data.user=u1", 2)
    assert plan.concurrency[1][0].startswith("account:concurrency:")
    assert plan.rate_limit is not None and plan.rate_limit[0].endswith("=u1")
    assert plan.singleton == ("shop-fn:singleton:event.data.user=u1", "skip")
    assert plan.idempotency_key == "shop-fn:'u1'"
    assert (plan.start_deadline, plan.finish_timeout_ms, plan.due_at) == (NOW + 1000, 5000, NOW - 30_000)
    [cancel] = plan.cancel_waits
    assert (cancel.kind, cancel.event_name, cancel.match_field, cancel.match_value) == (
        "cancel",
        "shop/stop",
        "data.user",
        '"u1"',
    )


def test_priority_is_clamped_to_twelve_hours_and_ignored_when_not_an_integer() -> None:
    far = planner(replace(FN, priority="100000")).plan(event(total=20), NOW)[0]
    assert far.due_at == NOW - 43_200_000
    odd = planner(replace(FN, priority="event.data.user")).plan(event(total=20, user="u1"), NOW)[0]
    assert odd.due_at == NOW
