"""CEL expressions, compiled once, evaluated with Inngest's semantics.

Inngest treats a missing field as null; the CEL library raises on a missing map key. That is
handled here, in one place: before evaluation every `event.a.b` / `async.a.b` path the
expression mentions is filled with null where it is absent (copying only the maps on the path).
Errors during evaluation (a type mismatch such as `null > 1`) make a boolean expression false.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_PATH = re.compile(r"(?<![\w.])(event|async)((?:\.[A-Za-z_]\w*)+)")
_EQUALITY = re.compile(
    r"^\s*(event|async)((?:\.[A-Za-z_]\w*)+)\s*==\s*(event|async)((?:\.[A-Za-z_]\w*)+)\s*$"
)
_FIELD = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


class ExpressionError(ValueError):
    pass


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any
    paths: tuple[tuple[str, tuple[str, ...]], ...]

    def evaluate(self, variables: dict[str, Any]) -> Any:
        return self.program.execute(_fill_missing(variables, self.paths))

    def matches(self, variables: dict[str, Any]) -> bool:
        try:
            return self.evaluate(variables) is True
        except Exception:
            return False


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
    """Compile or raise ExpressionError with the parser's message."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("expression must be a non-empty string")
    import cel  # imported on first use: the package is heavy, and `import outlast` stays light

    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(f"invalid expression {source!r}: {str(exc).splitlines()[0]}") from None
    paths = tuple((root, tuple(rest.lstrip(".").split("."))) for root, rest in _PATH.findall(source))
    return Expression(source, program, paths)


def _fill_missing(variables: dict[str, Any], paths: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    out = dict(variables)
    for root, parts in paths:
        if root not in out:
            out[root] = {}
        node = out[root] = dict(out[root]) if isinstance(out[root], dict) else out[root]
        for i, part in enumerate(parts):
            if not isinstance(node, dict):
                break
            last = i == len(parts) - 1
            if part not in node:
                node[part] = None if last else {}
            elif not last and isinstance(node[part], dict):
                node[part] = dict(node[part])
            node = node[part]
    return out


def lookup(obj: Any, dotted: str) -> Any:
    """`data.user.id` of an event dict; None where any part is missing."""
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


@dataclass(frozen=True)
class Equality:
    """`event.<trigger_path> == async.<incoming_path>`: indexable without evaluating CEL."""

    trigger_path: str
    incoming_path: str


def as_equality(source: str) -> Equality | None:
    m = _EQUALITY.match(source)
    if not m or m.group(1) == m.group(3):
        return None
    left, right = (m.group(1), m.group(2)[1:]), (m.group(3), m.group(4)[1:])
    trig, inc = (left, right) if left[0] == "event" else (right, left)
    return Equality(trigger_path=trig[1], incoming_path=inc[1])


def match_to_expression(match: str, *, what: str) -> str:
    """Inngest's `match="data.x"` shorthand: `event.data.x == async.data.x`."""
    if not isinstance(match, str) or not _FIELD.match(match):
        raise ExpressionError(f"{what}: match must be a dotted field path like 'data.order_id', got {match!r}")
    return f"event.{match} == async.{match}"


def key_value(expression: Expression, event: dict[str, Any]) -> str:
    """The string a key expression gives for an event (flow-control keys are strings)."""
    try:
        value = expression.evaluate({"event": event})
    except Exception:
        value = None
    return value if isinstance(value, str) else repr(value) if value is not None else ""
