"""JSON Canonicalization Scheme (RFC 8785): the bytes Outlast sends and signs.

Keys sorted by UTF-16 code units, no whitespace, strings escaped as ECMAScript's
`JSON.stringify` escapes them, numbers in ECMAScript's shortest form (`1.0` is `1`, `1e21` is
`1e+21`). SDKs verify a signature over the canonical form of the body (Python re-canonicalizes
what it receives, JavaScript canonicalizes the parsed body), so sending canonical bytes and
signing exactly those satisfies both.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import orjson

_SAFE_INT = 2**53


def canonical(value: Any) -> bytes:
    """The canonical JSON bytes of a JSON value; ValueError for NaN, infinities or non-JSON types."""
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts).encode()


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(orjson.dumps(value).decode())
    elif isinstance(value, int):
        out.append(str(value) if -_SAFE_INT <= value <= _SAFE_INT else number(float(value)))
    elif isinstance(value, float):
        out.append(number(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16)):
            if not isinstance(key, str):
                raise ValueError(f"JSON object keys must be strings, got {key!r}")
            if i:
                out.append(",")
            out.append(orjson.dumps(key).decode())
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise ValueError(f"{type(value).__name__} is not a JSON value")


def _utf16(key: Any) -> bytes:
    return key.encode("utf-16-be", "surrogatepass") if isinstance(key, str) else b""


def number(x: float) -> str:
    """ECMAScript's Number::toString for a finite double."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"{x!r} is not a JSON number")
    if x == 0:
        return "0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exponent = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    stripped = digits.rstrip("0")
    exponent = int(exponent) + len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = exponent + k  # the value is 0.<digits> x 10^n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text
