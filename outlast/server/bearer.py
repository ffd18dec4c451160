"""Bearer authentication for the APIs that Inngest's SDKs and tools call with a signing key.

In production mode a request must carry `Authorization: Bearer <token>` where the token is the
bearer form of one of the server's signing keys (`outlast.protocol.signing.bearer_token`); in
development mode nothing is required, as on Inngest's dev server. The refusal says what is
wrong with the key, never echoing it. A production server started without any signing key
refuses every request to these APIs (secure by default) rather than failing to start: its
other endpoints (the event API, health) keep working; `outlast start` is where a missing key
is reported. Wrong tokens are counted per client and overall (`outlast.server.guesses`): a
guesser is answered 429 with Retry-After.
"""

from __future__ import annotations

from starlette.requests import Request

from outlast.protocol.signing import bearer_matches, bearer_token, validate_key
from outlast.server import guesses
from outlast.server.mode import ServerConfig


class BearerGuard:
    def __init__(self, config: ServerConfig) -> None:
        self.required = config.production
        self.keys = config.signing_keys
        self.limits = config.guess_limits
        for key in self.keys if self.required else ():
            bearer_token(validate_key(key))  # a bad key fails at start, not on a request

    def refusal(self, request: Request, *, what: str) -> str | None:
        """Why the request to `what` (the API, for the message) is refused (for a 401), or None
        when it may proceed."""
        if not self.required:
            return None
        if not self.keys:
            return f"{what} is disabled: this production server has no signing key configured"
        header = request.headers.get("authorization")
        if not header:
            return (
                "signing key required: send 'Authorization: Bearer <signing key, hashed as the SDKs do>'"
                " (this server runs in production mode)"
            )
        if not header.startswith("Bearer "):
            return "signing key required: the Authorization header must use the Bearer scheme"
        if not guesses.check(request, self.limits, lambda: bearer_matches(header, self.keys)):
            return "signing key not accepted: the bearer token is not the hashed form of this server's signing key"
        return None
