"""Signing keys as Inngest uses them: request signatures (HMAC) and bearer tokens.

A signing key looks like `signkey-<env>-<hex>`. Two different derivations, as the SDKs expect:
- a request signature is `HMAC_SHA256(key, body || unix_seconds)` where the key is the hex
  string after the prefix used as ASCII bytes (not hex-decoded); header `t=<s>&s=<hex>`;
- a bearer token is `signkey-<env>-<sha256_hex(bytes.fromhex(hex))>` (hex-decoded first; the
  Python SDK sends it without the prefix).
"""

from __future__ import annotations

import hashlib
import hmac
import re

_PREFIX = re.compile(r"^signkey-[\w]+-")
SIGNATURE_HEADER = "X-Inngest-Signature"


class SigningKeyError(ValueError):
    """A signing key that is not of the form `signkey-<env>-<hex>` (or plain hex)."""


def _parts(key: str) -> tuple[str, str]:
    match = _PREFIX.match(key)
    prefix = match.group(0) if match else ""
    return prefix, key[len(prefix) :]


def validate_key(key: str) -> str:
    """The key if it has a hex body; else SigningKeyError saying what is wrong (never echoing the key)."""
    _prefix, body = _parts(key.strip())
    try:
        bytes.fromhex(body)
    except ValueError:
        raise SigningKeyError(
            "a signing key must be 'signkey-<env>-<hex>' (the part after the prefix is not hex)"
        ) from None
    if not body:
        raise SigningKeyError("a signing key must not be empty")
    return key.strip()


def bearer_token(key: str) -> str:
    """The token an SDK sends as `Authorization: Bearer <token>` for this key."""
    prefix, body = _parts(key)
    return prefix + hashlib.sha256(bytes.fromhex(body)).hexdigest()


def bearer_matches(authorization: str | None, keys: tuple[str, ...]) -> bool:
    """Whether an `Authorization` header carries the bearer form of one of `keys`: the JS SDK
    keeps the `signkey-<env>-` prefix on the hash, the Python SDK sends the bare hash."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    given = authorization.removeprefix("Bearer ").strip().encode()
    tokens = [bearer_token(k) for k in keys]
    candidates = tokens + [t[len(_parts(t)[0]) :] for t in tokens]
    return any(hmac.compare_digest(given, token.encode()) for token in candidates)


def sign(body: bytes, key: str, unix_seconds: int) -> str:
    """The `X-Inngest-Signature` value for a request body."""
    _prefix, hexkey = _parts(key)
    mac = hmac.new(hexkey.encode(), body + str(unix_seconds).encode(), hashlib.sha256).hexdigest()
    return f"t={unix_seconds}&s={mac}"


def signature_matches(header: str | None, body: bytes, keys: tuple[str, ...]) -> bool:
    """Whether a signature header was made with one of `keys` over `body` (no freshness check)."""
    if not header:
        return False
    fields = dict(part.split("=", 1) for part in header.split("&") if "=" in part)
    if not fields.get("t", "").isdigit() or "s" not in fields:
        return False
    return any(hmac.compare_digest(sign(body, k, int(fields["t"])), f"t={fields['t']}&s={fields['s']}") for k in keys)
