"""Strict JSON: what every entry point stores is JSON, and a refusal names the place."""

from __future__ import annotations

from typing import Any

import pytest

from outlast.core import jsonutil


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ({"x": float("nan")}, "x", "NaN is not valid JSON"),
        ({"a": [1, {"b c": float("-inf")}]}, 'a[1]["b c"]', "-Infinity"),
        ([float("inf")], "[0]", "Infinity"),
        ({"s": "\udc80"}, "s", "lone surrogate"),
        ({1: 2}, "", "a key must be a string, got int"),
        ({"n": 2**80}, "n", "64-bit"),
        ({"v": {1, 2}}, "v", "set is not JSON-serialisable"),
    ],
)
def test_values_that_are_not_strict_json_are_refused_with_their_place(value: Any, path: str, fragment: str) -> None:
    with pytest.raises(jsonutil.NotJSONError) as info:
        jsonutil.dumps(value)
    assert info.value.path == path and fragment in info.value.problem


def test_nulls_and_ordinary_values_pass_unchanged() -> None:
    value = {"x": None, "y": [1, 2.5, "null", True], "z": {"w": None}}
    assert jsonutil.roundtrip(value) == (value, '{"x":null,"y":[1,2.5,"null",true],"z":{"w":null}}')


def test_nesting_deeper_than_the_limit_is_refused_without_a_recursion_error() -> None:
    deep = jsonutil.loads('{"a":' * 1000 + "1" + "}" * 1000)
    with pytest.raises(jsonutil.NotJSONError, match="nested more than 254 levels deep"):
        jsonutil.dumps(deep)


def test_parsing_refuses_nan_and_says_when_bytes_are_not_utf8() -> None:
    with pytest.raises(ValueError, match="unexpected character"):
        jsonutil.loads('{"x": NaN}')
    with pytest.raises(ValueError, match="not valid UTF-8: byte 0xff at offset 9"):
        jsonutil.loads(b'{"name":"\xff"}')
