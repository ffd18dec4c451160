"""CEL expressions, compiled once, evaluated with Inngest's semantics.

Inngest treats a missing field as null; the CEL library raises on a missing map key. That is
handled here, in one place: before evaluation every `event.a.b` / `async.a.b` path the
expression mentions is filled with null where it is absent (copying only the maps on the path).
Errors during evaluation (a type mismatch such as `null > 1`) make a boolean expression false.

At definition, an expression is also checked for what can be known without data: it may use
only the variables its option provides (`event`, and `async` where an incoming event is
matched), and a condition must give a boolean (`event.data.x + 1` never does). The result kind
comes from the expression's outermost operator or call (`_result_kind`); a bare field path
(`event.data.flag`) may hold anything and is accepted.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from outlast.core import jsonutil

_PATH = re.compile(r"(?<![\w.])(event|async)((?:\.[A-Za-z_]\w*)+)")
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


Result = Literal["any", "bool", "number"]
#: the variables of an expression that tests the trigger event alone
EVENT = ("event",)
#: the variables of an expression that matches an incoming event (`async`) against the trigger
EVENT_AND_ASYNC = ("event", "async")


@lru_cache(maxsize=4096)
def compile_expression(source: str, *, variables: tuple[str, ...] | None = None, result: Result = "any") -> Expression:
    """Compile or raise ExpressionError with the parser's message.

    With `variables`, an expression naming any other variable is refused; with `result` "bool"
    (a condition) or "number", one whose result is known to be of another kind is refused.
    """
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError("expression must be a non-empty string")
    import cel  # imported on first use: the package is heavy, and `import outlast` stays light

    try:
        program = cel.compile(source)
    except Exception as exc:
        raise ExpressionError(f"invalid expression {source!r}: {str(exc).splitlines()[0]}") from None
    if variables is not None:
        _check_variables(source, program.variables(), variables)
    if result != "any":
        _check_result(source, result)
    paths = tuple((root, tuple(rest.lstrip(".").split("."))) for root, rest in _PATH.findall(source))
    return Expression(source, program, paths)


# -- what can be checked without data ------------------------------------------------------------

#: names CEL programs report as variables that are not: type names, and the `cel.` namespace
_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn", "cel", "google"}
)
#: variables bound inside the expression by a comprehension (`x` in `items.all(x, x > 0)`) or `cel.bind`
_BOUND = re.compile(
    r"\.\s*(?:all|exists|exists_one|map|filter|bind|transformList|transformMap)\s*\(\s*"
    r"([A-Za-z_]\w*)\s*,(?:\s*([A-Za-z_]\w*)\s*,)?"
)
_TOKEN = re.compile(
    r"""\s*(?:(?P<str>[rRbB]{0,2}"""
    r"""(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*"))"""
    r"|(?P<num>\d[\w.]*(?:[eE][+-]?\d+)?)|(?P<id>[A-Za-z_]\w*)"
    r"|(?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:()\[\]{}.,]))"
)
_BOOL_CALLS = frozenset(
    {"has", "exists", "all", "exists_one", "startsWith", "endsWith", "contains", "matches", "bool", "isSorted"}
)
_NUMBER_CALLS = frozenset(
    {
        "size",
        "int",
        "uint",
        "double",
        "getFullYear",
        "getMonth",
        "getDate",
        "getDayOfMonth",
        "getDayOfWeek",
        "getDayOfYear",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
    }
)
_VALUE_CALLS = {
    "string": "a string",
    "lowerAscii": "a string",
    "upperAscii": "a string",
    "trim": "a string",
    "replace": "a string",
    "substring": "a string",
    "join": "a string",
    "map": "a list",
    "filter": "a list",
    "split": "a list",
    "bytes": "bytes",
    "timestamp": "a timestamp",
    "duration": "a duration",
}


def _check_variables(source: str, used: list[str], allowed: tuple[str, ...]) -> None:
    bound = {name for match in _BOUND.finditer(source) for name in match.groups() if name}
    unknown = sorted(set(used) - set(allowed) - bound - _TYPE_NAMES)
    if unknown:
        offer = " and ".join(allowed)
        raise ExpressionError(
            f"{source!r} uses unknown variable {unknown[0]!r}; only {offer} "
            f"{'is' if len(allowed) == 1 else 'are'} available here (e.g. 'event.data.amount')"
        )


def _check_result(source: str, wanted: Result) -> None:
    tokens = [(m.lastgroup or "", m.group(m.lastgroup or 0)) for m in _TOKEN.finditer(source)]
    kind = _result_kind(tokens)
    if kind is None:
        return
    if wanted == "bool" and kind != "a boolean":
        raise ExpressionError(
            f"{source!r} gives {kind}, not true or false; a condition must compare or test "
            f"something (e.g. 'event.data.amount > 100')"
        )
    if wanted == "number" and kind not in ("a number", SUM):
        raise ExpressionError(f"{source!r} gives {kind}, not a number")


Token = tuple[str, str]
#: what `a + b` gives when the operands do not tell: never a boolean, maybe a number
SUM = "a sum (a number, a string or a list)"


def _result_kind(tokens: list[Token]) -> str | None:
    """What an expression gives, from its outermost operator or call ("a boolean", "a number", "a
    string", ...), or None when only the data can tell (a field path, an index)."""
    while len(tokens) > 1 and tokens[0][1] in "([" and _closing(tokens, 0) == len(tokens) - 1 and tokens[0][1] == "(":
        tokens = tokens[1:-1]  # (a + b) is a + b
    if not tokens:
        return None
    top = _top_level(tokens)
    if "?" in top:
        q = top["?"][0]
        colon = next((i for i in top.get(":", []) if i > q), None)
        if colon is None:
            return None
        then, other = _result_kind(tokens[q + 1 : colon]), _result_kind(tokens[colon + 1 :])
        return then if then == other else None
    if "||" in top or "&&" in top or any(op in top for op in ("==", "!=", "<", "<=", ">", ">=", "in")):
        return "a boolean"
    if "+" in top or "-" in top:
        kinds = {_result_kind(part) for part in _split(tokens, top, ("+", "-"))} - {None}
        return kinds.pop() if len(kinds) == 1 else SUM
    if "*" in top or "/" in top or "%" in top:
        return "a number"
    return _unary_kind(tokens)


def _unary_kind(tokens: list[Token]) -> str | None:
    first_kind, first = tokens[0]
    if first == "!":
        return "a boolean"
    if first == "-":
        return "a number"
    if len(tokens) == 1:
        if first_kind == "num":
            return "a number"
        if first_kind == "str":
            return "bytes" if first[:2].lower() in ("b'", 'b"', "br", "rb") else "a string"
        return {"true": "a boolean", "false": "a boolean", "null": "null"}.get(first)
    if tokens[-1][1] == ")":  # a call: name(...) or x.name(...)
        opening = _opening(tokens, len(tokens) - 1)
        name = tokens[opening - 1][1] if opening > 0 and tokens[opening - 1][0] == "id" else None
        if name is None:
            return None
        if name in _BOOL_CALLS:
            return "a boolean"
        if name in _NUMBER_CALLS:
            return "a number"
        return _VALUE_CALLS.get(name)
    if first in "[{" and _closing(tokens, 0) == len(tokens) - 1:
        return "a list" if first == "[" else "a map"
    return None


def _top_level(tokens: list[Token]) -> dict[str, list[int]]:
    """Operators outside any brackets, with their positions (a `-` only where it is binary)."""
    found: dict[str, list[int]] = {}
    depth = 0
    for i, (kind, text) in enumerate(tokens):
        if text in "([{" and kind == "op":
            depth += 1
        elif text in ")]}" and kind == "op":
            depth -= 1
        elif depth == 0 and (kind == "op" or text == "in"):
            if text in "+-" and (i == 0 or not _ends_operand(tokens[i - 1])):
                continue  # unary minus
            found.setdefault(text, []).append(i)
    return found


def _ends_operand(token: Token) -> bool:
    kind, text = token
    return kind in ("num", "str", "id") or text in (")", "]", "}")


def _split(tokens: list[Token], top: dict[str, list[int]], ops: tuple[str, ...]) -> list[list[Token]]:
    cuts = sorted(i for op in ops for i in top.get(op, []))
    bounds = [-1, *cuts, len(tokens)]
    return [tokens[a + 1 : b] for a, b in itertools.pairwise(bounds) if tokens[a + 1 : b]]


def _closing(tokens: list[Token], start: int) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        text = tokens[i][1]
        if tokens[i][0] == "op" and text in "([{":
            depth += 1
        elif tokens[i][0] == "op" and text in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _opening(tokens: list[Token], end: int) -> int:
    depth = 0
    for i in range(end, -1, -1):
        text = tokens[i][1]
        if tokens[i][0] == "op" and text in ")]}":
            depth += 1
        elif tokens[i][0] == "op" and text in "([{":
            depth -= 1
            if depth == 0:
                return i
    return -1


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
class Term:
    """`async.<incoming_path> == event.<trigger_path>` (or `== <literal>`): one indexable equality."""

    incoming_path: str
    trigger_path: str | None = None
    literal: Any = None

    def expected(self, trigger: dict[str, Any]) -> Any:
        return lookup(trigger, self.trigger_path) if self.trigger_path is not None else self.literal


@dataclass(frozen=True)
class Conjunction:
    """The equalities of a wait's `&&` conjunction that an index can find, sorted by incoming path;
    `exact` when they are the whole expression (else the rest is evaluated on what the index finds)."""

    terms: tuple[Term, ...]
    exact: bool

    @property
    def field(self) -> str:
        """The incoming fields, as stored in `match_field` (one path, or paths joined by ',')."""
        return INDEX_SEPARATOR.join(t.incoming_path for t in self.terms)

    def value(self, trigger: dict[str, Any]) -> str:
        """The `match_value` an incoming event must give for `field` (see `incoming_values`)."""
        return _index_value([t.expected(trigger) for t in self.terms])


#: joins the paths of a composite `match_field` (a field path never holds one)
INDEX_SEPARATOR = ","


def incoming_values(field: str, payload: dict[str, Any]) -> tuple[str, ...]:
    """What an incoming event gives for a stored `match_field`, to compare with `match_value`: the
    canonical text, and, where it differs, the plain JSON text that waits stored before values
    were made canonical hold."""
    values = [lookup(payload, path) for path in field.split(INDEX_SEPARATOR)]
    canonical = _index_value(values)
    plain = jsonutil.dumps(values[0] if len(values) == 1 else values)
    return (canonical,) if plain == canonical else (canonical, plain)


def _index_value(values: list[Any]) -> str:
    return jsonutil.dumps(_canonical(values[0] if len(values) == 1 else values))


def _canonical(value: Any) -> Any:
    """A value as CEL's equality sees it: 1.0 is 1, and a map's keys have no order."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


_LITERALS = {"true": True, "false": False, "null": None}
_SIMPLE_STRING = re.compile(r"""^(?:"([^"\\\n]*)"|'([^'\\\n]*)')$""")


def indexable(source: str) -> Conjunction | None:
    """The equalities between `async` and the trigger (`event`) or a literal in a conjunction
    (`event.data.id == async.data.id && async.data.kind == "paid" && async.data.n > 2`), or None
    when there are none (or the expression is not a plain conjunction: `||`, `?:` at the top)."""
    tokens = _tokens(source)
    if tokens is None:
        return None
    tokens = _unwrap(tokens)
    top = _top_level(tokens)
    if any(op in top for op in ("||", "?", ":")):
        return None
    parts = _split(tokens, top, ("&&",))
    terms = [t for t in (_term(_unwrap(part)) for part in parts) if t is not None]
    if not terms:
        return None
    return Conjunction(terms=tuple(sorted(terms, key=lambda t: t.incoming_path)), exact=len(terms) == len(parts))


def _tokens(source: str) -> list[Token] | None:
    """The tokens of the whole source, or None when some text is not a token `_TOKEN` knows."""
    tokens, end = [], 0
    for m in _TOKEN.finditer(source):
        if m.start() != end:
            return None
        tokens.append((m.lastgroup or "", m.group(m.lastgroup or 0)))
        end = m.end()
    return tokens if source[end:].strip() == "" else None


def _unwrap(tokens: list[Token]) -> list[Token]:
    while len(tokens) > 2 and tokens[0] == ("op", "(") and _closing(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    return tokens


def _term(tokens: list[Token]) -> Term | None:
    top = _top_level(tokens)
    if set(top) - {"==", "."} or len(top.get("==", [])) != 1:
        return None
    eq = top["=="][0]
    left, right = _operand(tokens[:eq]), _operand(tokens[eq + 1 :])
    if left is None or right is None:
        return None
    if left[0] != "async":
        left, right = right, left
    if left[0] != "async" or right[0] == "async":
        return None
    if right[0] == "event":
        return Term(incoming_path=left[1], trigger_path=right[1])
    return Term(incoming_path=left[1], literal=right[1])


def _operand(tokens: list[Token]) -> tuple[str, Any] | None:
    """("event" | "async", dotted path after the root) or ("literal", value), or None."""
    texts = [text for _, text in tokens]
    if len(tokens) >= 3 and texts[0] in ("event", "async") and len(tokens) % 2 == 1:
        names, dots = tokens[2::2], texts[1::2]
        if all(d == "." for d in dots) and all(kind == "id" for kind, _ in names):
            return texts[0], ".".join(text for _, text in names)
        return None
    if len(tokens) == 2 and texts[0] == "-" and tokens[1][0] == "num" and texts[1].isdigit():
        return "literal", -int(texts[1])
    if len(tokens) != 1:
        return None
    kind, text = tokens[0]
    if kind == "num" and text.isdigit():
        return "literal", int(text)
    if kind == "id" and text in _LITERALS:
        return "literal", _LITERALS[text]
    if kind == "str" and (m := _SIMPLE_STRING.match(text)):
        return "literal", m.group(1) if m.group(1) is not None else m.group(2)
    return None


def match_to_expression(match: str, *, what: str) -> str:
    """Inngest's `match="data.x"` shorthand: `event.data.x == async.data.x`."""
    if not isinstance(match, str) or not _FIELD.match(match):
        raise ExpressionError(f"{what}: match must be a dotted field path like 'data.order_id', got {match!r}")
    return f"event.{match} == async.{match}"


def key_value(expression: Expression, event: dict[str, Any]) -> str:
    """The string a key expression gives for an event (flow-control keys are strings).

    A key is stored as text, which on PostgreSQL cannot hold NUL: a string with a NUL is kept as
    its JSON form (`"a\\u0000"`, quotes included), the same on every backend, so an event whose
    data is storable is never refused for the key a function derives from it."""
    try:
        value = expression.evaluate({"event": event})
    except Exception:
        value = None
    if isinstance(value, str):
        return json.dumps(value) if "\x00" in value else value
    return repr(value) if value is not None else ""
