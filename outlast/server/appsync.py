"""Syncing served apps from the dashboard: the narrow seam between the Apps page and the protocol.

The dashboard needs two things it does not own: asking an app at a URL to sync (its functions
then reach the store through `POST /fn/register`, which fills the `apps` table), and forgetting an
app. `AppSync` is that seam. `PutSync`, the default, does what Inngest's dev server does to
discover an app: it sends `PUT <url>`, which makes an Inngest SDK register itself with the server
its `INNGEST_BASE_URL` names (this one); the protocol's in-band sync may replace it.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

from outlast.core.engine import Engine

SYNC_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    ok: bool
    message: str


class AppSync(Protocol):
    async def sync(self, url: str) -> SyncResult:
        """Ask the app served at `url` to sync its functions now."""
        ...

    async def remove(self, app_id: str) -> bool:
        """Forget the app and its functions (runs are kept); False if it was unknown."""
        ...


class PutSync:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def sync(self, url: str) -> SyncResult:
        problem = url_problem(url)
        if problem:
            return SyncResult(ok=False, message=problem)
        try:
            status, body = await asyncio.to_thread(_put, url)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            return SyncResult(ok=False, message=f"could not reach {url}: {reason}")
        if not 200 <= status < 300:
            return SyncResult(ok=False, message=f"{url} answered {status}: {body[:300]}")
        await self.engine.refresh_registry(force=True)
        return SyncResult(ok=True, message=f"{url} was asked to sync ({status})")

    async def remove(self, app_id: str) -> bool:
        gone = await self.engine.store.remove_app(app_id, self.engine.clock.now_ms())
        await self.engine.refresh_registry(force=True)
        return gone


def url_problem(url: str) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"not an http(s) URL: {url!r}"
    return None


def _put(url: str) -> tuple[int, str]:
    request = urllib.request.Request(url, method="PUT", data=b"", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=SYNC_TIMEOUT_S) as reply:  # the scheme was checked
            return int(reply.status), reply.read(4096).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(4096).decode(errors="replace")
