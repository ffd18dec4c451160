"""Apps on the official Inngest SDKs, as the engine knows them: register (sync), remove.

A sync replaces the app's functions atomically (its row and its functions in one
transaction): functions it no longer has stop receiving events at once, and their runs still
in flight fail with a clear error when next claimed (nobody serves them any more). An
identical re-sync (same payload checksum) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from outlast.core.models import ACTIVE_STATUSES, RunFilter, SyncedApp
from outlast.errors import FunctionConfigError
from outlast.protocol.sync import SyncRequest

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine


@dataclass(frozen=True, slots=True, kw_only=True)
class Registered:
    app_id: str
    #: False for an identical re-sync
    modified: bool


async def register_app(engine: Engine, request: SyncRequest) -> Registered:
    """Store a synced app and its functions (replacing the previous sync); raise
    FunctionConfigError when the app id belongs to local functions served by this process."""
    if request.app_id in engine.sources:
        raise FunctionConfigError(
            f"app {request.app_id!r} is served by local functions in this process; "
            "an app on an Inngest SDK needs a different app id"
        )
    now = engine.clock.now_ms()
    stored = await engine.store.get_app(request.app_id)
    app = SyncedApp(
        id=request.app_id, url=request.url, sdk=request.sdk, framework=request.framework, checksum=request.checksum
    )
    changed = await engine.store.sync_app(app, request.functions, now)  # also records when it last synced
    if changed:
        await engine.refresh_registry(force=True)
        engine.wake()
    return Registered(app_id=request.app_id, modified=changed or stored is None or stored.checksum != request.checksum)


async def record_sync_error(engine: Engine, app_id: str, url: str | None, error: str) -> None:
    """Keep why a sync failed with the app (its functions stay as they were)."""
    await engine.store.record_app_error(app_id, url, error, engine.clock.now_ms())


async def remove_app(engine: Engine, app_id: str) -> bool:
    """Forget a synced app and its functions; cancel its runs still in flight, saying why.
    False (and nothing changed) when no such synced app is stored: local apps are their workers'."""
    if await engine.store.get_app(app_id) is None:
        return False
    removed = await engine.store.remove_app(app_id, engine.clock.now_ms())
    await engine.refresh_registry(force=True)
    for status in ACTIVE_STATUSES:
        cancelled = True
        while cancelled:
            runs = await engine.store.list_runs(RunFilter(app_id=app_id, status=status, limit=500))
            cancelled = False
            for run in runs:
                cancelled |= await engine.store.cancel_run(run.id, engine.clock.now_ms(), f"app {app_id!r} was removed")
    engine.wake()
    return removed
