"""Typed results: a step body (or an invoked function's handler) annotated to return a type
Pydantic validates (a model, `list[User]`, `datetime`, ...) gives that type back, on its first
run and on every replay, while the memo and outputs keep its JSON form.

A body's value is written as JSON with the annotation's `TypeAdapter` and read back from that
JSON with the same adapter, on the first run too: so the first run and a replay see one value.
Annotations that are plain JSON already (`dict[str, Any]`, `list[int]`, `str | None`, ...) or
absent take the fast path: nothing is converted and Pydantic is never imported.
"""

from __future__ import annotations

import contextlib
import inspect
import types
import typing
import weakref
from collections.abc import Callable
from typing import Any

from outlast.core.jsonutil import NotJSONError
from outlast.errors import FunctionConfigError

_PLAIN = (str, int, float, bool, type(None), Any, object)
_UNIONS = (typing.Union, types.UnionType)


class ResultType:
    """Converts one annotation's values to and from their JSON form."""

    def __init__(self, annotation: Any, adapter: Any) -> None:
        self.annotation = annotation
        self._adapter = adapter

    def dump(self, value: Any) -> Any:
        """`value`'s JSON form; NotJSONError when it does not fit the annotation."""
        try:
            return self._adapter.dump_python(value, mode="json", warnings="error")
        except Exception as exc:  # pydantic's serialization errors and warnings
            problem = str(exc).splitlines()[0]
            raise NotJSONError(f"it does not fit its return annotation {self.annotation!r}: {problem}") from None

    def load(self, json_value: Any) -> Any:
        return self._adapter.validate_python(json_value)


_CACHE: weakref.WeakKeyDictionary[Callable[..., Any], ResultType | None] = weakref.WeakKeyDictionary()


def result_type(fn: Callable[..., Any]) -> ResultType | None:
    """The typed result of `fn`'s return annotation; None when it returns plain JSON (or has no
    annotation). FunctionConfigError naming the function when Pydantic cannot validate the type."""
    target = getattr(fn, "__func__", fn)  # a bound method's annotations are its function's
    if "return" not in (getattr(target, "__annotations__", None) or {}):
        return None
    try:
        return _CACHE[target]
    except (KeyError, TypeError):
        pass
    found = _build(target)
    with contextlib.suppress(TypeError):  # not weakly referenceable: built again next time
        _CACHE[target] = found
    return found


def _build(fn: Callable[..., Any]) -> ResultType | None:
    name = getattr(fn, "__qualname__", repr(fn))
    annotation = _resolved_return(fn)
    if annotation is None or _plain_json(annotation):
        return None
    from pydantic import TypeAdapter
    from pydantic.errors import PydanticUserError

    try:
        adapter = TypeAdapter(annotation)
        adapter.json_schema(mode="serialization")
    except PydanticUserError as exc:
        problem = str(exc).splitlines()[0]
        raise FunctionConfigError(
            f"{name}: its return annotation {annotation!r} is not a type Pydantic can validate and write as JSON:"
            f" {problem}"
        ) from None
    return ResultType(annotation, adapter)


class _Return:
    def __init__(self, annotation: Any) -> None:
        self.__annotations__ = {"return": annotation}


def _resolved_return(fn: Callable[..., Any]) -> Any:
    """`fn`'s return annotation, a string (`from __future__ import annotations`) resolved in its
    module and closure; None when it names something neither holds (a name imported inside the
    enclosing function): such a result is left as JSON, as an unannotated one is."""
    annotation = fn.__annotations__["return"]
    if not isinstance(annotation, str):
        return annotation
    try:
        nonlocals = inspect.getclosurevars(fn).nonlocals if inspect.isfunction(fn) else {}
        hints = typing.get_type_hints(_Return(annotation), getattr(fn, "__globals__", {}), dict(nonlocals))
    except Exception:  # NameError, or a string that is no type expression
        return None
    return hints["return"]


def _plain_json(annotation: Any) -> bool:
    if annotation in _PLAIN or annotation in (dict, list):
        return True
    origin = typing.get_origin(annotation)
    if origin in (dict, list) or origin in _UNIONS:
        return all(_plain_json(arg) for arg in typing.get_args(annotation))
    return False
