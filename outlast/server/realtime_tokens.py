"""Channel tokens: what a browser subscribes with in production (`POST /api/realtime/token`).

A token names one channel (and optionally the topics it may see) and an expiry, and is signed
with HMAC-SHA256 under a key derived from the server's signing keys and dashboard password, so
every server process of one deployment accepts the tokens of the others, and changing either
secret ends every token. Development servers with no secret sign with a key of their own.
A token is not the dashboard password, and reveals nothing about it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from outlast.server.mode import ServerConfig

TOKEN_TTL_MS = 3_600_000
_VERSION = "v1"


class TokenError(Exception):
    """A token was refused; the message says why (never echoing the token)."""


@dataclass(frozen=True, slots=True)
class Grant:
    channel: str
    #: the topics the token allows; None: every topic of the channel
    topics: tuple[str, ...] | None
    expires_ms: int


class ChannelTokens:
    def __init__(self, config: ServerConfig) -> None:
        secret = "\0".join([*config.signing_keys, config.dashboard_password])
        seed = secret.encode() if secret.strip("\0") else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"outlast-realtime-token\0" + seed).digest()

    def mint(self, *, channel: str, topics: list[str] | None, now_ms: int) -> str:
        claims = {"c": channel, "t": topics, "e": now_ms + TOKEN_TTL_MS}
        payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{_VERSION}.{payload}.{self._sign(payload)}"

    def check(self, token: str, *, channel: str, topics: list[str] | None, now_ms: int) -> Grant:
        """The grant of a valid token for `channel` and `topics` (None: what the token allows);
        TokenError otherwise."""
        grant = self.read(token, now_ms=now_ms)
        if grant.channel != channel:
            raise TokenError(f"the token is for another channel than {channel!r}")
        outside = sorted(set(topics) - set(grant.topics)) if topics is not None and grant.topics is not None else []
        if outside:
            raise TokenError(f"the token does not allow the topics {', '.join(map(repr, outside))}")
        return grant

    def read(self, token: str, *, now_ms: int) -> Grant:
        """The grant of a token this server minted and that has not expired; TokenError otherwise."""
        grant = self._grant(token)
        if grant.expires_ms <= now_ms:
            when = datetime.fromtimestamp(grant.expires_ms / 1000, UTC).isoformat(timespec="seconds")
            raise TokenError(f"the token expired at {when}: ask for a new one")
        return grant

    def _grant(self, token: str) -> Grant:
        version, _, rest = token.partition(".")
        payload, _, signature = rest.partition(".")
        if version != _VERSION or not payload or not signature:
            raise TokenError("not a channel token (expected one from POST /api/realtime/token)")
        if not hmac.compare_digest(signature.encode(), self._sign(payload).encode()):
            raise TokenError("the token's signature is not accepted: it was altered or minted by another server")
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            topics = claims["t"]
            return Grant(str(claims["c"]), None if topics is None else tuple(topics), int(claims["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise TokenError("not a channel token (its contents cannot be read)") from None

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")
