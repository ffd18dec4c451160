"""Waits: equality waits found by index, expression waits evaluated, only waits stored before the
event, expired ones left to their run's claim, cancel rules, and invoke results."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from outlast.core.config import CancelRule
from outlast.core.expressions import compile_expression
from outlast.core.models import Claimed, EventRecord, Finish, Suspend, WaitSpec
from outlast.core.planner import wait_spec
from outlast.storage.base import Store
from tests.storage.contract import (
    APP,
    LEASE,
    T0,
    claim_one,
    commit,
    define,
    event,
    function,
    pending,
    run,
)

WAIT_MS = 60_000


async def waiting_run(
    store: Store,
    *,
    expression: str,
    at: int = T0,
    key: str = "w",
    kind: str = "wait",
    event_name: str = "c/paid",
    timeout_output: Any = None,
    **trigger: Any,
) -> Claimed:
    """A run (triggered with `trigger` data) that waits for `event_name` matching `expression`."""
    trigger_event = event(at=at, **trigger)
    await store.ingest([trigger_event], at)
    c = await claim_one(store, "w", at)
    spec = wait_spec(
        kind=kind,
        event_name=event_name,
        expression=expression,
        trigger=trigger_event.to_dict(),
        expires_at=at + WAIT_MS,
        step_key=key,
    )
    status = "invoking" if kind == "invoke" else "waiting"
    step_kind = "invoke" if kind == "invoke" else "wait_for_event"
    row = pending(key, kind=step_kind, status=status, deadline=at + WAIT_MS, timeout_output=timeout_output)
    assert (await store.commit(commit(c, at, steps=[row], waits=[spec], outcome=Suspend(due_at=at + WAIT_MS)))).ok
    return c


async def ingest_and_match(store: Store, events: list[EventRecord], now: int) -> None:
    """Ingest, then match what expression waits were left (the worker's matcher does this)."""
    await store.ingest(events, now)
    await store.match_expression_waits(now)


async def step_of(store: Store, run_id: str, key: str = "w") -> Any:
    return next(s for s in (await run(store, run_id)).steps if s.key == key)


async def test_an_equality_wait_is_resolved_by_the_matching_event_only(store: Store) -> None:
    c = await waiting_run(store, expression="event.data.order == async.data.order", order="o1")
    other = event("c/paid", at=T0 + 1, order="o2")
    await store.ingest([other, event("c/other", at=T0 + 1, order="o1")], T0 + 1)
    assert (await step_of(store, c.run.run_id)).status == "waiting"
    assert await store.claim(APP, "w", 10, T0 + 1, LEASE) == []
    paid = event("c/paid", at=T0 + 2, order="o1", amount=5)
    await store.ingest([paid], T0 + 2)
    resolved = await step_of(store, c.run.run_id)
    assert (resolved.status, resolved.output["data"], resolved.ended_at) == (
        "completed",
        {"order": "o1", "amount": 5},
        T0 + 2,
    )
    resumed = await claim_one(store, "w", T0 + 2)  # due at once, not at the wait's timeout
    assert resumed.run.memo["w"].output["id"] == paid.id
    assert [x.effect for x in await store.event_effects(paid.id)] == ["resumed"]
    assert await store.event_effects(other.id) == []


async def test_an_expression_wait_is_resolved_when_its_expression_holds(store: Store) -> None:
    c = await waiting_run(store, expression="async.data.amount > event.data.least", least=10)
    await ingest_and_match(store, [event("c/paid", at=T0 + 1, amount=10)], T0 + 1)
    assert (await step_of(store, c.run.run_id)).status == "waiting"
    paid = event("c/paid", at=T0 + 2, amount=11)
    await store.ingest([paid], T0 + 2)
    assert (await step_of(store, c.run.run_id)).status == "waiting"  # left to the matcher
    assert await store.match_expression_waits(T0 + 3) == 1
    resolved = await step_of(store, c.run.run_id)
    assert (resolved.output["data"], resolved.ended_at) == ({"amount": 11}, T0 + 3)
    assert [x.effect for x in await store.event_effects(paid.id)] == ["resumed"]
    assert await store.match_expression_waits(T0 + 4) == 0  # nothing left: resolved once


async def test_one_event_resolves_every_wait_it_matches(store: Store) -> None:
    first = await waiting_run(store, expression="event.data.order == async.data.order", order="o1")
    second = await waiting_run(store, expression="async.data.order == 'o1'", at=T0 + 1, order="x")
    paid = event("c/paid", at=T0 + 2, order="o1")
    await store.ingest([paid], T0 + 2)
    effects = await store.event_effects(paid.id)
    assert sorted(x.run_id for x in effects) == sorted([first.run.run_id, second.run.run_id])
    assert [x.run_id for x in effects] == sorted(x.run_id for x in effects)  # ordered by run id


async def test_a_wait_sees_only_events_that_arrive_after_it_was_stored(store: Store) -> None:
    early = event("c/paid", at=T0, order="o1")
    await store.ingest([early], T0)
    c = await waiting_run(store, expression="event.data.order == async.data.order", at=T0 + 1, order="o1")
    assert (await step_of(store, c.run.run_id)).status == "waiting"
    await store.ingest([early], T0 + 2)  # the same event again (a retried ingest) resolves nothing
    assert (await step_of(store, c.run.run_id)).status == "waiting"


async def test_an_expired_wait_is_not_resolved_by_an_event_but_times_out_at_its_claim(store: Store) -> None:
    c = await waiting_run(store, expression="event.data.order == async.data.order", order="o1")
    late = event("c/paid", at=T0 + WAIT_MS, order="o1")
    await store.ingest([late], T0 + WAIT_MS)
    assert await store.event_effects(late.id) == []
    resumed = await claim_one(store, "w", T0 + WAIT_MS)
    timed_out = resumed.run.memo["w"]
    assert (timed_out.status, timed_out.output, timed_out.ended_at) == ("completed", None, T0 + WAIT_MS)
    assert resumed.run.run_id == c.run.run_id


async def test_an_invoke_fails_with_its_child_error_or_its_timeout_output(store: Store) -> None:
    timeout = {"name": "InvokeTimeout", "message": "timed out"}
    child_failed = await waiting_run(
        store,
        kind="invoke",
        event_name="inngest/function.finished",
        expression="async.data.run_id == 'child-1'",
        order="a",
        timeout_output=timeout,
    )
    no_answer = await waiting_run(
        store,
        kind="invoke",
        event_name="inngest/function.finished",
        at=T0 + 1,
        expression="async.data.run_id == 'child-2'",
        order="b",
        timeout_output=timeout,
    )
    await store.ingest(
        [event("inngest/function.finished", at=T0 + 2, run_id="child-1", error={"name": "Boom", "message": "no"})],
        T0 + 2,
    )
    row = await step_of(store, child_failed.run.run_id)
    assert (row.status, row.error) == ("failed", {"name": "Boom", "message": "no"})
    woken = await claim_one(store, "w", T0 + 2)
    assert woken.run.run_id == child_failed.run.run_id
    assert (await store.commit(commit(woken, T0 + 2, outcome=Finish(status="completed")))).ok
    resumed = await claim_one(store, "w", T0 + 1 + WAIT_MS)
    assert resumed.run.run_id == no_answer.run.run_id
    assert (resumed.run.memo["w"].status, resumed.run.memo["w"].error) == ("failed", timeout)


async def test_a_cancel_rule_cancels_the_run_on_a_matching_event_until_its_timeout(store: Store) -> None:
    rule = CancelRule(event="c/stop", expression="event.data.order == async.data.order", timeout_ms=10_000)
    await define(store, function("stoppable", "c/start", cancel=(rule,)))
    await store.ingest([event("c/start", order="o1"), event("c/start", order="o2")], T0)
    first, second = sorted((await store.claim(APP, "w", 10, T0, LEASE)), key=lambda c: c.run.events[0].data["order"])
    stop = event("c/stop", at=T0 + 1, order="o1")
    await store.ingest([event("c/stop", at=T0 + 1, order="o3"), stop], T0 + 1)
    cancelled = await run(store, first.run.run_id)
    assert (cancelled.status, cancelled.error) == (
        "cancelled",
        {"name": "FunctionCancelled", "message": "cancelled by event c/stop"},
    )
    assert [(x.run_id, x.effect) for x in await store.event_effects(stop.id)] == [(first.run.run_id, "cancelled")]
    assert not (await store.commit(commit(first, T0 + 2))).ok  # its attempt lost the lease
    await store.ingest([event("c/stop", at=T0 + 10_000, order="o2")], T0 + 10_000)  # the rule's timeout passed
    assert (await run(store, second.run.run_id)).status == "running"


async def test_a_wait_resolved_during_an_attempt_makes_its_suspend_due_now(store: Store) -> None:
    await store.ingest([event(order="o1")], T0)
    c = await claim_one(store, "w", T0)
    spec = WaitSpec(
        kind="wait",
        event_name="c/paid",
        expression=None,
        match_field="data.order",
        match_value='"o1"',
        expires_at=T0 + WAIT_MS,
        step_key="w",
    )
    row = pending("w", kind="wait_for_event", status="waiting", deadline=T0 + WAIT_MS)
    assert (await store.commit(commit(c, T0, steps=[row], waits=[spec]))).ok  # stored, attempt still going
    await store.ingest([event("c/paid", at=T0 + 10, order="o1")], T0 + 10)
    assert await store.claim(APP, "x", 10, T0 + 10, LEASE) == []  # still leased
    assert (await store.commit(commit(c, T0 + 20, outcome=Suspend(due_at=T0 + WAIT_MS)))).ok
    assert await store.next_due_at(APP) == T0 + 20
    assert (await claim_one(store, "w", T0 + 20)).run.memo["w"].status == "completed"


#: (wait expression, trigger data, incoming data): conjunctions of equalities with the trigger or a
#: literal are indexed (with what else they say evaluated on the waits found); others are evaluated
CONJUNCTIONS = [
    ("event.data.id == async.data.id && async.data.x == event.data.y", {"id": 1, "y": "a"}, {"id": 1, "x": "a"}),
    ("event.data.id == async.data.id && async.data.x == event.data.y", {"id": 1, "y": "a"}, {"id": 1, "x": "b"}),
    ("event.data.id == async.data.id && async.data.x == event.data.y", {"id": 1, "y": "a"}, {"id": 2, "x": "a"}),
    ("(async.data.id == event.data.id) && async.data.kind == 'paid'", {"id": "o"}, {"id": "o", "kind": "paid"}),
    ("(async.data.id == event.data.id) && async.data.kind == 'paid'", {"id": "o"}, {"id": "o", "kind": "due"}),
    ("event.data.id == async.data.id && async.data.n > 2", {"id": 7}, {"id": 7, "n": 3}),
    ("event.data.id == async.data.id && async.data.n > 2", {"id": 7}, {"id": 7, "n": 2}),
    ("event.data.id == async.data.id && async.data.n > 2", {"id": 7}, {"id": 8, "n": 3}),
    ("event.data.missing == async.data.missing && async.data.on == true", {}, {"on": True}),
    ("event.data.missing == async.data.missing && async.data.on == true", {}, {"on": True, "missing": 1}),
    ("async.data.n == -3 && async.data.a.b == event.data.a.b", {"a": {"b": [1]}}, {"n": -3, "a": {"b": [1]}}),
    ("async.data.n == -3 && async.data.a.b == event.data.a.b", {"a": {"b": [1]}}, {"n": 3, "a": {"b": [1]}}),
    ("event.data.id == async.data.id || async.data.any == true", {"id": 1}, {"id": 2, "any": True}),
    ("event.data.id == async.data.id || async.data.any == true", {"id": 1}, {"id": 2}),
    ("!(event.data.id == async.data.id)", {"id": 1}, {"id": 2}),
    ("!(event.data.id == async.data.id)", {"id": 1}, {"id": 1}),
    ("event.data.id == async.data.id", {"id": 1}, {"id": 1.0}),
    ("async.data.n == 2 && async.data.m == event.data.m", {"m": 3.0}, {"n": 2.0, "m": 3}),
    ("event.data.o == async.data.o", {"o": {"a": 1, "b": [2.0]}}, {"o": {"b": [2], "a": 1.0}}),
]


@pytest.mark.parametrize(("expression", "trigger", "incoming"), CONJUNCTIONS)
async def test_a_conjunction_wait_resolves_exactly_when_its_expression_holds(
    store: Store, expression: str, trigger: dict[str, Any], incoming: dict[str, Any]
) -> None:
    holds = compile_expression(expression).matches({"event": {"data": trigger}, "async": {"data": incoming}})
    c = await waiting_run(store, expression=expression, **trigger)
    await ingest_and_match(store, [event("c/paid", at=T0 + 1, **incoming)], T0 + 1)
    assert (await step_of(store, c.run.run_id)).status == ("completed" if holds else "waiting")


def test_equalities_with_the_trigger_or_a_literal_make_a_wait_indexed() -> None:
    def spec(expression: str) -> WaitSpec:
        trigger = {"data": {"id": 1, "y": "a"}}
        return wait_spec(kind="wait", event_name="c/paid", expression=expression, trigger=trigger, expires_at=T0)

    both = spec("async.data.x == event.data.y && event.data.id == async.data.id")
    assert (both.match_field, both.match_value, both.expression) == ("data.id,data.x", '[1,"a"]', None)
    partly = spec("event.data.id == async.data.id && async.data.n > 2")
    assert (partly.match_field, partly.match_value, partly.expression) == ("data.id", "1", partly.expression)
    assert partly.expression is not None
    assert spec("async.data.kind == 'paid'").match_field == "data.kind"
    either = spec("event.data.id == async.data.id || async.data.n > 2")
    assert (either.match_field, either.expression) == (None, "event.data.id == async.data.id || async.data.n > 2")


async def test_a_wait_stored_before_values_were_canonical_is_still_found(store: Store) -> None:
    await store.ingest([event(order=1.0)], T0)
    c = await claim_one(store, "w", T0)
    spec = WaitSpec(
        kind="wait",
        event_name="c/paid",
        expression=None,
        match_field="data.order",
        match_value="1.0",  # as the trigger's 1.0 was stored before: plain JSON text
        expires_at=T0 + WAIT_MS,
        step_key="w",
    )
    row = pending("w", kind="wait_for_event", status="waiting", deadline=T0 + WAIT_MS)
    assert (await store.commit(commit(c, T0, steps=[row], waits=[spec], outcome=Suspend(due_at=T0 + WAIT_MS)))).ok
    await store.ingest([event("c/paid", at=T0 + 10, order=1.0)], T0 + 10)
    assert (await step_of(store, c.run.run_id)).status == "completed"


async def test_a_wait_stored_after_its_event_was_left_to_the_matcher_does_not_match_it(store: Store) -> None:
    first = await waiting_run(store, expression="async.data.amount > 1")
    paid = event("c/paid", at=T0 + 1, amount=5)
    await store.ingest([paid], T0 + 1)
    later = await waiting_run(store, expression="async.data.amount > 1", at=T0 + 2)
    assert await store.match_expression_waits(T0 + 3) == 1
    assert (await step_of(store, first.run.run_id)).status == "completed"
    assert (await step_of(store, later.run.run_id)).status == "waiting"


async def test_ingest_of_other_events_goes_on_while_20000_expression_waits_are_evaluated(store: Store) -> None:
    """The matcher evaluates outside any write: here it is held at its first evaluation until an
    event of another name (which starts a run) has been ingested and its run claimed."""
    c = await waiting_run(store, expression="async.data.amount > event.data.least", least=10)
    spec = wait_spec(
        kind="wait",
        event_name="c/paid",
        expression="async.data.amount > 100 || async.data.id == 'never'",
        trigger={"data": {}},
        expires_at=T0 + WAIT_MS,
        step_key="w",
    )
    await store.commit(commit(c, T0, waits=[spec] * 19_999))
    await store.ingest([event("c/paid", at=T0 + 1, amount=11)], T0 + 1)
    evaluating, go = threading.Event(), threading.Event()
    store.bind(HeldPlanner(store.planner, evaluating, go))
    matching = asyncio.create_task(store.match_expression_waits(T0 + 2))
    try:
        assert await asyncio.to_thread(evaluating.wait, 60)
        await store.ingest([event(at=T0 + 2)], T0 + 2)  # another name: starts a run
        started = await claim_one(store, "w2", T0 + 2)
        assert not matching.done() and started.run.status == "running"
    finally:
        go.set()
    assert await matching == 1
    assert (await step_of(store, c.run.run_id)).output["data"] == {"amount": 11}


class HeldPlanner:
    """The store's planner, its first expression evaluation held until `go`."""

    def __init__(self, planner: Any, evaluating: threading.Event, go: threading.Event) -> None:
        self._planner, self._evaluating, self._go = planner, evaluating, go

    def matches(self, *args: Any) -> bool:
        self._evaluating.set()
        assert self._go.wait(60)
        return bool(self._planner.matches(*args))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._planner, name)


async def test_the_matcher_hears_of_an_expression_check_only_once_it_is_committed(store: Store) -> None:
    """A matcher that reads the count mid-transaction (and so finds nothing to match yet) must be
    told again by the commit: the count moves only after COMMIT, never inside the transaction."""
    from outlast.storage.sql import ingest
    from outlast.storage.sql.store import SqlStore

    assert isinstance(store, SqlStore)
    c = await waiting_run(store, expression="async.data.amount > event.data.least", least=10)
    before = store.expression_checks()
    seen_inside: list[int] = []

    def ingest_and_look(tx: Any) -> list[str]:
        ids = ingest.ingest(tx, store.planner, [event("c/paid", at=T0 + 1, amount=11)], T0 + 1)
        seen_inside.append(store.expression_checks())
        return ids

    await store._run(ingest_and_look, notify=True)
    assert seen_inside == [before]  # recorded, not yet committed: nothing a matcher could find
    assert store.expression_checks() == before + 1
    assert await store.match_expression_waits(T0 + 2) == 1
    assert (await step_of(store, c.run.run_id)).status == "completed"
