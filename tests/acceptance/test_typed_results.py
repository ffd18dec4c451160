"""Typed results (API.md, "Typed events and typed results"): a step body annotated to return a
type Pydantic validates gives that type back on its first run and on every replay, and so does
`step.invoke` of a function whose return is annotated; the memo and outputs stay JSON."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from pydantic import BaseModel

import outlast
from outlast import Context, FunctionConfigError
from outlast.testing import TestEngine

SEEN: list[tuple[str, Any]] = []


class User(BaseModel):
    id: str
    email: str


class Opaque:
    """Not a type Pydantic can validate."""


def get_user(user_id: str) -> User:
    return User(id=user_id, email=f"{user_id}@example.com")


async def team(n: int) -> list[User]:
    return [get_user(f"u{i}") for i in range(n)]


def when() -> datetime.datetime:
    return datetime.datetime(2026, 12, 7, 16, 0, tzinfo=datetime.UTC)


def wrong() -> User:
    return "not a user"  # type: ignore[return-value]


def opaque() -> Opaque:
    return Opaque()


def typed_app(url: str) -> outlast.Outlast:
    app = outlast.Outlast("typed-results", database_url=url)

    @app.function(id="child", trigger="t/child")
    async def child(ctx: Context) -> User:
        return get_user(ctx.event.data["id"])

    @app.function(id="parent", trigger="t/parent", retries=0)
    async def parent(ctx: Context) -> dict[str, Any]:
        user = await ctx.step.run("get-user", get_user, "u1")
        users = await ctx.step.run("team", team, 2)
        at = await ctx.step.run("when", when)
        SEEN.append(("before sleep", (user, users, at)))
        await ctx.step.sleep("nap", "1m")  # the next attempt replays the three steps from the memo
        invoked = await ctx.step.invoke("invoke", function=child, data={"id": "u9"})
        SEEN.append(("after sleep", (user, users, at, invoked)))
        return {"email": user.email, "team": [u.id for u in users], "year": at.year, "child": invoked.email}

    @app.function(id="wrong", trigger="t/wrong", retries=3)
    async def wrong_fn(ctx: Context) -> None:
        await ctx.step.run("wrong", wrong)

    @app.function(id="opaque", trigger="t/opaque", retries=3)
    async def opaque_fn(ctx: Context) -> None:
        await ctx.step.run("opaque", opaque)

    return app


async def test_steps_and_invokes_return_their_annotated_types_on_first_run_and_replay(store_url: str) -> None:
    SEEN.clear()
    async with TestEngine(typed_app(store_url), database_url=store_url) as t:
        [event_id] = await t.send({"name": "t/parent"})
        await t.run_until_idle()
        t.advance("1m")
        await t.run_until_idle()
        [run] = t.runs(function_id="parent", event_id=event_id)
    assert run.status == "completed", run.error
    assert run.output == {"email": "u1@example.com", "team": ["u0", "u1"], "year": 2026, "child": "u9@example.com"}
    expected = (get_user("u1"), [get_user("u0"), get_user("u1")], when())
    befores = [seen for label, seen in SEEN if label == "before sleep"]
    afters = [seen for label, seen in SEEN if label == "after sleep"]
    assert len(befores) >= 2 and afters  # the first run of the steps, and replays from the memo
    assert all(seen == expected for seen in befores)  # models equal by value, the datetime aware
    assert all(seen[:3] == expected and seen[3] == get_user("u9") for seen in afters)
    assert all(isinstance(seen[0], User) and isinstance(seen[1][0], User) for seen in befores + afters)
    memo = {s.id: s.output for s in run.steps}
    assert memo["get-user"] == {"id": "u1", "email": "u1@example.com"}  # stored as JSON
    assert memo["when"] == "2026-12-07T16:00:00Z"


async def test_a_value_that_does_not_fit_or_a_type_pydantic_cannot_validate_fails_the_step_at_once(
    store_url: str,
) -> None:
    async with TestEngine(typed_app(store_url), database_url=store_url) as t:
        await t.send([{"name": "t/wrong"}, {"name": "t/opaque"}])
        await t.run_until_idle()
        [wrong_run] = t.runs(function_id="wrong")
        [opaque_run] = t.runs(function_id="opaque")
    assert wrong_run.status == "failed" and wrong_run.error is not None
    assert "does not fit its return annotation" in wrong_run.error["message"]
    assert opaque_run.status == "failed" and opaque_run.error is not None
    assert opaque_run.error["name"] == "StepUsageError"
    assert "step 'opaque'" in opaque_run.error["message"] and "Opaque" in opaque_run.error["message"]


def test_a_function_whose_return_annotation_pydantic_cannot_validate_is_refused_when_defined() -> None:
    app = outlast.Outlast("refused", database_url="memory://")

    async def handler(ctx: Context) -> Opaque:
        return Opaque()

    with pytest.raises(FunctionConfigError, match=r"return annotation .*Opaque.* is not a type Pydantic can validate"):
        app.function(id="opaque", trigger="t/x")(handler)
    assert "opaque" not in app.functions
