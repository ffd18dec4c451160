"""Expressions: compiled once, checked at definition for what can be known without data."""

from __future__ import annotations

import pytest

from outlast.core.expressions import EVENT, EVENT_AND_ASYNC, ExpressionError, compile_expression


@pytest.mark.parametrize(
    "source",
    [
        "event.data.x > 1",
        "event.data.flag",
        "!event.data.x",
        "true",
        "event.data.x == 1 ? true : false",
        "(event.data.x > 1)",
        "event.data.items.exists(i, i > 1)",
        "has(event.data.x)",
        "event.data.n.startsWith('a')",
        "event.data.x - 1 > 0",
        "event.data.a in [1, 2]",
        "event.data.x == 'a?b:c'",
        "type(event.data.x) == int",
        "event.data.items.all(i, v, v > 1)",
        "event.data.list[0]",
        "int(event.data.s) > 3",
        "event.data.a || event.data.b",
    ],
)
def test_conditions_that_can_be_true_are_accepted(source: str) -> None:
    assert compile_expression(source, variables=EVENT, result="bool").matches({"event": {"data": {"x": 2}}}) in (
        True,
        False,
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("foo.bar == 1", "unknown variable 'foo'; only event is available here"),
        ("event.data.x > 1 && other", "unknown variable 'other'"),
        ("async.data.x == event.data.x", "unknown variable 'async'"),
        ("event.data.x + 1", "gives a number, not true or false"),
        ("event.data.a + event.data.b", "gives a sum"),
        ("'yes'", "gives a string"),
        ("size(event.data.items)", "gives a number"),
        ("event.data.items.map(i, i * 2)", "gives a list"),
        ("event.data.x == 1 ? 1 : 2", "gives a number"),
        ("null", "gives null"),
    ],
)
def test_conditions_that_can_never_be_true_are_refused(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError, match=fragment.replace("(", r"\(").replace("?", r"\?")):
        compile_expression(source, variables=EVENT, result="bool")


def test_matching_an_incoming_event_may_use_async_too() -> None:
    expr = compile_expression("async.data.id == event.data.id", variables=EVENT_AND_ASYNC, result="bool")
    assert expr.matches({"event": {"data": {"id": 1}}, "async": {"data": {"id": 1}}})


def test_a_priority_must_be_a_number() -> None:
    assert compile_expression("event.data.vip ? 120 : 0", variables=EVENT, result="number")
    assert compile_expression("event.data.a + 10", variables=EVENT, result="number")
    with pytest.raises(ExpressionError, match="gives a boolean, not a number"):
        compile_expression("event.data.vip == true", variables=EVENT, result="number")


def test_missing_fields_are_null_as_in_inngest() -> None:
    expr = compile_expression("event.data.user.id == null", variables=EVENT, result="bool")
    assert expr.matches({"event": {"data": {}}})
    assert not compile_expression("event.data.x > 1").matches({"event": {}})


def test_without_checks_stored_expressions_still_compile() -> None:
    assert compile_expression("foo.bar == 1").source == "foo.bar == 1"
