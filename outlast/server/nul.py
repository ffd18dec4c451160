"""Refuse a request whose URL holds a NUL character (`%00`), before any handler reads it.

No id, name or query parameter can contain NUL: PostgreSQL text cannot hold it, so nothing
stored has one, and a lookup passing one to PostgreSQL fails as if the database were down. One
check here answers every such URL alike, on every backend: 400, naming what is wrong.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MESSAGE = "the URL contains a NUL character (%00): no id, name or parameter may hold one"


class RefuseNulInUrls:
    """ASGI middleware: HTTP requests with NUL in their path or query string get a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            await JSONResponse({"error": MESSAGE}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _has_nul(scope: Scope) -> bool:
    query = bytes(scope.get("query_string", b"")).lower()
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query
