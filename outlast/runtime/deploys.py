"""Rolling deploys: each stored function configuration is that of the newest live worker serving
the function (latest start, then worker id).

A worker that starts stores its configurations at once (a merge sync), so the newest one's are
stored while it lives. When it goes away, the newest of the workers left puts its own back at
its next heartbeat: an older version restarted in the middle of a deploy, and then stopped,
never leaves its configuration behind for the newer workers to run under.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from outlast.core.models import WorkerInfo

if TYPE_CHECKING:
    from outlast.runtime.engine import Engine


def newest_servers(live: list[WorkerInfo]) -> dict[tuple[str, str], str]:
    """(app id, function id) -> the id of the newest live worker serving it."""
    newest: dict[tuple[str, str], WorkerInfo] = {}
    for worker in live:
        for function_id in worker.functions:
            key = (worker.app_id, function_id)
            held = newest.get(key)
            if held is None or (worker.started_at, worker.id) > (held.started_at, held.id):
                newest[key] = worker
    return {key: worker.id for key, worker in newest.items()}


async def restore_own_configs(engine: Engine, *, worker_ids: set[str], live: list[WorkerInfo]) -> list[str]:
    """Store this engine's configuration of each function whose newest live server is one of
    `worker_ids` (this process) but whose stored configuration differs; return their
    `app/function` names."""
    newest = newest_servers(live)
    await engine.refresh_registry()
    stored_apps = engine.registry.apps()
    restored: list[str] = []
    for app_id, source in sorted(engine.sources.items()):
        stored = {f.config.id: f.config.to_json() for f in stored_apps.get(app_id, ())}
        configs = [
            fn.config
            for function_id, fn in sorted(source.functions.items())
            if newest.get((app_id, function_id)) in worker_ids and stored.get(function_id) != fn.config.to_json()
        ]
        if configs:
            await engine.store.sync_functions(app_id, configs, engine.clock.now_ms(), mode="merge")
            restored += [f"{app_id}/{c.id}" for c in configs]
    if restored:
        await engine.refresh_registry(force=True)
    return restored
