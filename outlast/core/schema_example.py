"""An example JSON value built from a JSON Schema (a typed trigger's), for the dashboard's Send
event form: each property gets its `default` or first `examples` entry, else a placeholder of its
type; `$ref`s into `$defs` are followed (a recursive one ends as null)."""

from __future__ import annotations

from typing import Any

_PLACEHOLDERS: dict[str, Any] = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "null": None}


def example_from_schema(schema: dict[str, Any]) -> Any:
    return _example(schema, schema.get("$defs") or {}, set())


def _example(schema: dict[str, Any], defs: dict[str, Any], seen: set[str]) -> Any:
    if "default" in schema:
        return schema["default"]
    if schema.get("examples"):
        return schema["examples"][0]
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:
            return None
        return _example(defs[name], defs, seen | {name})
    for choice in ("anyOf", "oneOf", "allOf"):
        if schema.get(choice):
            return _example(schema[choice][0], defs, seen)
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _example(sub, defs, seen) for name, sub in (schema.get("properties") or {}).items()}
    return _PLACEHOLDERS.get(kind if isinstance(kind, str) else "null")


def typed_trigger_schema(configs: list[Any], event_name: str) -> dict[str, Any] | None:
    """The JSON Schema of the first typed trigger of `event_name` among function configs."""
    for config in configs:
        for trigger in config.triggers:
            if getattr(trigger, "event", None) == event_name and getattr(trigger, "schema", None):
                return trigger.data_schema()  # type: ignore[no-any-return]
    return None
