"""JSON encoding for everything stored: strict (JSON types only), compact and fast.

Strict means what every entry point agrees on: NaN and ±Infinity are refused (orjson would
write them as `null`), strings must be valid Unicode, keys must be strings, nesting is limited
(orjson's 254 levels). A refusal is a `NotJSONError` naming where in the value the problem is
(`data.items[2].price`), so callers can name the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from typing import Any

import orjson

#: orjson refuses to encode deeper values
MAX_DEPTH = 254


class NotJSONError(TypeError):
    """A value that cannot be stored as JSON. `path` says where in it (empty: the value itself)."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.problem = problem
        self.path = path


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # Pydantic models, without importing pydantic
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def dumps(value: Any) -> str:
    """Compact JSON text, or NotJSONError naming the first offending place in `value`."""
    if value is None:
        return "null"  # common (empty columns), and its "null" must not send us looking for NaN
    return encode(value).decode()


def encode(value: Any) -> bytes:
    """`dumps` as UTF-8 bytes (its length is the size a limit counts)."""
    try:
        data = orjson.dumps(value, default=_default)
    except TypeError as exc:
        raise _explain(value, str(exc)) from None
    if b"null" in data and not _finite(value):  # orjson writes NaN and ±Infinity as null
        found = _non_finite(value)
        if found is not None:
            raise found
    return data


def _finite(value: Any) -> bool:
    """Whether `value` holds no NaN or ±Infinity, by the C encoder of the standard library (fast);
    False also when it cannot tell (the slow walk then decides)."""
    try:
        json.dumps(value, allow_nan=False, default=_loose)
    except (ValueError, TypeError, RecursionError):
        return False
    return True


def _loose(value: Any) -> Any:
    """What the standard encoder needs of the types only orjson knows, to look inside them."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    return str(value)  # datetime, UUID, enum, ...: no float inside


def loads(text: str | bytes | None) -> Any:
    """Parse JSON text (NaN and Infinity are not JSON); ValueError says what is wrong, including
    bytes that are not UTF-8."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if isinstance(text, (bytes, bytearray, memoryview)):
            try:
                bytes(text).decode("utf-8")
            except UnicodeDecodeError as bad:
                raise ValueError(
                    f"not valid UTF-8: byte 0x{bytes(text)[bad.start]:02x} at offset {bad.start}"
                ) from None
        raise ValueError(str(exc)) from None


def roundtrip(value: Any) -> tuple[Any, str]:
    """The JSON form of `value` and its text: what a step returns is what replay returns."""
    text = dumps(value)
    return orjson.loads(text), text


# -- finding what orjson refused -----------------------------------------------------------------


def _explain(value: Any, message: str) -> NotJSONError:
    """orjson says what but not where: walk the value to find the place."""
    for path, problem in _problems(value, "", 0):
        return NotJSONError(problem, path)
    if "Recursion limit" in message:
        return NotJSONError(f"nested more than {MAX_DEPTH} levels deep")
    return NotJSONError(message)


def _non_finite(value: Any) -> NotJSONError | None:
    for path, problem in _problems(value, "", 0):
        if "NaN" in problem or "Infinity" in problem:
            return NotJSONError(problem, path)
    return None


def _problems(value: Any, path: str, depth: int) -> Iterator[tuple[str, str]]:
    """(path, problem) for each place in `value` that is not strict JSON, depth first."""
    if depth > MAX_DEPTH:
        yield "", f"nested more than {MAX_DEPTH} levels deep"  # the path would be as long
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            yield path, f"{_float_name(value)} is not valid JSON (use null, a number or a string)"
    elif isinstance(value, str):
        if not _is_unicode(value):
            yield path, "not valid Unicode text (it contains a lone surrogate such as '\\udc80')"
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                yield path, f"a key must be a string, got {type(key).__name__} {key!r}"
                return
            if not _is_unicode(key):
                yield path, f"the key {key!r} is not valid Unicode text"
                return
            yield from _problems(item, _member(path, key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _problems(item, f"{path}[{i}]", depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _problems(getattr(value, f.name), _member(path, f.name), depth + 1)
    elif callable(getattr(value, "model_dump", None)):
        yield from _problems(value.model_dump(mode="json"), path, depth)
    elif isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            yield path, f"the integer {value} is outside the 64-bit range JSON numbers are kept in"
    elif value is not None and not _orjson_native(value):
        yield path, f"{type(value).__name__} is not JSON-serialisable"


def _orjson_native(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _float_name(value: float) -> str:
    return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _member(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{orjson.dumps(key).decode()}]"
