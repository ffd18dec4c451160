"""JSON encoding for everything stored: strict (JSON types only), compact and fast."""

from __future__ import annotations

from typing import Any

import orjson


class NotJSONError(TypeError):
    pass


def _default(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # Pydantic models, without importing pydantic
    if callable(dump):
        return dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=_default).decode()
    except TypeError as exc:
        raise NotJSONError(str(exc)) from None


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def roundtrip(value: Any) -> tuple[Any, str]:
    """The JSON form of `value` and its text: what a step returns is what replay returns."""
    text = dumps(value)
    return orjson.loads(text), text
