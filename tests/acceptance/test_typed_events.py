"""Typed events (API.md, "Typed events and typed results"): an `EventType` validates what is
created, types a function's `ctx.event.data` (and a batch's `ctx.events`) as its model, and an
untyped event that does not follow the model fails only the typed function's run, at once."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import outlast
from outlast import (
    Batch,
    Cancel,
    Context,
    Event,
    EventType,
    FunctionConfigError,
    InvalidEventError,
    TriggerEvent,
    WaitFor,
)
from outlast.testing import TestEngine


class OrderCreated(BaseModel):
    order_id: str
    total: float


class Refund(BaseModel):
    order_id: str


order_created = EventType("shop/order.created", OrderCreated)
order_cancelled = EventType("shop/order.cancelled", Refund)


def shop(url: str) -> outlast.Outlast:
    app = outlast.Outlast("typed", database_url=url)

    @app.function(id="ship", trigger=TriggerEvent(order_created, if_="event.data.total > 0"), retries=3)
    async def ship(ctx: Context[OrderCreated]) -> dict[str, Any]:
        assert isinstance(ctx.event.data, OrderCreated)
        total = await ctx.step.run("double", lambda: ctx.event.data.total * 2)
        return {"order": ctx.event.data.order_id, "double": total}

    @app.function(id="audit", trigger="shop/order.created")
    async def audit(ctx: Context) -> Any:
        return ctx.event.data  # untyped: the JSON object as sent

    @app.function(
        id="wait", trigger=[order_created, "shop/other"], cancel=[Cancel(event=order_cancelled, match="data.order_id")]
    )
    async def wait(ctx: Context[OrderCreated]) -> str:
        await ctx.step.sleep("nap", "1h")
        return ctx.event.data.order_id

    @app.function(id="sum", trigger=order_created, batch=Batch(max_size=3, timeout="1m"))
    async def total(ctx: Context[OrderCreated]) -> float:
        return sum(e.data.total for e in ctx.events)

    return app


async def test_a_typed_function_gets_its_model_and_an_untyped_one_the_json(store_url: str) -> None:
    async with TestEngine(shop(store_url), database_url=store_url) as t:
        sent = [order_created.create(order_id="o1", total=10)]
        sent += [order_created.create({"order_id": f"o{n}", "total": n}) for n in (2, 3)]
        [event_id, *_] = await t.send(sent)
        await t.run_until_idle()
        [ship] = t.runs(function_id="ship", event_id=event_id)
        assert (ship.status, ship.output) == ("completed", {"order": "o1", "double": 20.0})
        [audit] = t.runs(function_id="audit", event_id=event_id)
        assert audit.output == {"order_id": "o1", "total": 10.0}  # create stored the model's JSON form
        [batch] = t.runs(function_id="sum")
        assert (batch.status, batch.output) == ("completed", 15.0)


async def test_an_untyped_event_that_does_not_validate_fails_only_the_typed_runs_at_once(store_url: str) -> None:
    async with TestEngine(shop(store_url), database_url=store_url) as t:
        [event_id] = await t.send(Event(name="shop/order.created", data={"order_ref": "o1", "total": 5}))
        await t.run_until_idle()
        [ship] = t.runs(function_id="ship", event_id=event_id)
        assert ship.status == "failed" and ship.error is not None
        assert ship.error["name"] == "EventValidationError"
        assert f"event 'shop/order.created' {event_id}: data.order_id: Field required" in ship.error["message"]
        assert "OrderCreated" in ship.error["message"]
        assert not ship.failures  # no retry, though the function has retries=3
        [audit] = t.runs(function_id="audit", event_id=event_id)
        assert audit.status == "completed"


async def test_a_typed_cancel_rule_and_a_list_of_triggers(store_url: str) -> None:
    async with TestEngine(shop(store_url), database_url=store_url) as t:
        [kept, gone] = await t.send(
            [order_created.create(order_id="o1", total=0), order_created.create(order_id="o2", total=0)]
        )
        await t.run_until_idle()
        await t.send(order_cancelled.create(order_id="o2"))
        await t.run_until_idle()
        t.advance("1h")
        await t.run_until_idle()
        assert [r.status for r in t.runs(function_id="wait", event_id=kept)] == ["completed"]
        assert [r.status for r in t.runs(function_id="wait", event_id=gone)] == ["cancelled"]
        assert t.runs(function_id="ship", event_id=kept) == []  # its `if_` (total > 0) held


def test_bad_input_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidEventError, match=r"event 'shop/order.created': data.total: .*OrderCreated"):
        order_created.create(order_id="o1", total="lots")
    with pytest.raises(InvalidEventError, match=r"data\.order_id: Field required"):
        order_created.create(total=1)

    class Opaque(BaseModel):
        when: datetime.datetime
        hook: Callable[[], int]  # a callable has no JSON form

    with pytest.raises(FunctionConfigError, match="model Opaque has no JSON form: field 'hook'"):
        EventType("x/opaque", Opaque)
    with pytest.raises(FunctionConfigError, match="must describe a JSON object"):
        EventType("x/number", int)

    app = outlast.Outlast("clash", database_url="memory://")
    other = EventType("shop/order.created", Refund)
    with pytest.raises(FunctionConfigError, match="typed with two models, OrderCreated and Refund"):
        app.function(id="both", trigger=[order_created, other])
    app.function(id="one", trigger=order_created)(lambda ctx: None)
    with pytest.raises(FunctionConfigError, match=r"function 'two': option 'trigger': .* two models"):
        app.function(id="two", trigger=other)


class Paid(BaseModel):
    order_id: str
    amount: float


order_paid = EventType("shop/order.paid", Paid)


def waiting_shop(url: str) -> outlast.Outlast:
    app = outlast.Outlast("typed-waits", database_url=url)

    @app.function(id="await-payment", trigger=order_created)
    async def await_payment(ctx: Context[OrderCreated]) -> Any:
        paid = await ctx.step.wait_for_event("paid", event=order_paid, match="data.order_id", timeout="1d")
        await ctx.step.sleep("settle", "1h")  # the run resumes after it: the wait's match comes from the memo
        return None if paid is None else [type(paid.data).__name__, paid.data.amount, paid.id]

    @app.function(id="any-and-all", trigger="shop/start")
    def any_and_all(ctx: Context) -> Any:  # a plain `def` handler: the blocking step API
        waits = [WaitFor(order_paid, match="data.order_id"), WaitFor("shop/order.refused", match="data.order_id")]
        first = ctx.step.wait_for_any("first", waits, timeout="1d")
        both = ctx.step.wait_for_all("both", waits, timeout="1h")
        ctx.step.sleep("settle", "1h")
        return [repr(first.data if first else None), [repr(e.data if e else None) for e in both]]

    return app


async def test_a_wait_on_an_event_type_returns_the_model_on_first_run_and_replay(store_url: str) -> None:
    async with TestEngine(waiting_shop(store_url), database_url=store_url) as t:
        await t.send(order_created.create(order_id="o1", total=5))
        await t.run_until_idle()
        [paid_id] = await t.send(order_paid.create(order_id="o1", amount=5))
        await t.run_until_idle()
        t.advance("1h")
        await t.run_until_idle()
        [run] = t.runs(function_id="await-payment")
        assert (run.status, run.output) == ("completed", ["Paid", 5.0, paid_id])
        [wait, _] = run.steps
        assert wait.output["data"] == {"order_id": "o1", "amount": 5.0}  # the memo keeps the JSON form


async def test_a_typed_wait_whose_match_does_not_validate_fails_the_run_naming_field_and_event(store_url: str) -> None:
    async with TestEngine(waiting_shop(store_url), database_url=store_url) as t:
        await t.send(order_created.create(order_id="o1", total=5))
        await t.run_until_idle()
        [bad_id] = await t.send(Event(name="shop/order.paid", data={"order_id": "o1", "amount": "lots"}))
        await t.run_until_idle()
        [run] = t.runs(function_id="await-payment")
        assert run.status == "failed" and run.error is not None
        assert run.error["name"] == "EventValidationError"
        assert f"event 'shop/order.paid' {bad_id}: data.amount:" in run.error["message"]
        assert "(model Paid)" in run.error["message"]


async def test_typed_waits_in_wait_for_any_and_wait_for_all(store_url: str) -> None:
    async with TestEngine(waiting_shop(store_url), database_url=store_url) as t:
        await t.send(Event(name="shop/start", data={"order_id": "o1"}))
        await t.run_until_idle()
        await t.send(order_paid.create(order_id="o1", amount=7))
        await t.run_until_idle()
        await t.send(Event(name="shop/order.refused", data={"order_id": "o1", "why": "late"}))
        await t.run_until_idle()
        for _ in ("the wait for all times out", "the sleep ends"):
            t.advance("1h")
            await t.run_until_idle()
        [run] = t.runs(function_id="any-and-all")
    typed, untyped = "Paid(order_id='o1', amount=7.0)", "{'order_id': 'o1', 'why': 'late'}"
    assert (run.status, run.output) == ("completed", [typed, ["None", untyped]])
