"""Syncing served apps from the dashboard and the read API: a narrow seam over `outlast.server.sync`.

`sync(url)` asks the app at `url` to register with this server (`PUT`) and reports what the store
then shows; `remove(app_id)` forgets a synced app and its functions and cancels its runs in flight
(`outlast.runtime.synced_apps.remove_app`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from outlast.runtime.engine import Engine
from outlast.runtime.synced_apps import remove_app
from outlast.server.sync import sync_app_url


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    ok: bool
    message: str


class AppSync:
    def __init__(self, engine: Engine, *, production: bool) -> None:
        self.engine = engine
        self.production = production

    async def sync(self, url: str) -> SyncResult:
        problem = url_problem(url)
        if problem:
            return SyncResult(ok=False, message=problem)
        result = await sync_app_url(self.engine, url, production=self.production)
        return SyncResult(ok=result.ok, message=result.message)

    async def remove(self, app_id: str) -> bool:
        return await remove_app(self.engine, app_id)


def url_problem(url: str) -> str | None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"not an http(s) URL: {url!r}"
    return None
