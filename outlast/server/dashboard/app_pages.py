"""The dashboard's pages for what runs the functions: synced apps (sync, resync, remove), live
workers, and bulk jobs. Syncing goes through `outlast.server.sync`, as the JSON API's does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from outlast.core.models import WorkerInfo
from outlast.errors import OutlastError
from outlast.runtime.worker import WORKER_TIMEOUT_MS
from outlast.server import reads, sync
from outlast.server.body import read_form
from outlast.server.dashboard.render import redirect, render
from outlast.server.services import services


async def apps(request: Request) -> Response:
    found = services(request)
    engine = found.engine
    now = engine.clock.now_ms()
    connected: dict[str, list[WorkerInfo]] = {}
    for w in found.connect.live(await engine.reads.list_workers(now - WORKER_TIMEOUT_MS)):
        if w.connected:
            connected.setdefault(w.app_id, []).append(w)
    overview = await reads.apps_overview(engine)
    return render(request, "apps.html", nav="apps", apps=overview, connected=connected, now=now)


async def sync_app(request: Request) -> Response:
    url = (await read_form(request)).get("url", "").strip()
    found = services(request)
    result = await sync.sync_app_url(found.engine, url, production=found.config.production)
    return redirect("/apps", message=result.message, kind="ok" if result.ok else "error")


async def resync_app(request: Request) -> Response:
    app_id = request.path_params["app_id"]
    found = services(request)
    result = await sync.resync_app(found.engine, app_id, production=found.config.production)
    if result is None:
        return redirect("/apps", message=f"App {app_id!r} has no URL to sync from.", kind="error")
    return redirect("/apps", message=result.message, kind="ok" if result.ok else "error")


async def remove_app(request: Request) -> Response:
    app_id = request.path_params["app_id"]
    if not await sync.remove_app(services(request).engine, app_id):
        return redirect("/apps", message=f"No synced app {app_id!r}.", kind="error")
    return redirect("/apps", message=f"App {app_id!r} removed; its runs are kept.")


async def workers(request: Request) -> Response:
    found = services(request)
    now = found.engine.clock.now_ms()
    rows = found.connect.live(await found.engine.reads.list_workers(now - WORKER_TIMEOUT_MS))
    return render(request, "workers.html", nav="workers", workers=rows, now=now)


async def bulk(request: Request) -> Response:
    found = services(request)
    await found.engine.refresh_registry()
    functions = sorted((f.app_id, f.id) for f in found.engine.registry.functions.values())
    jobs = found.bulk.list()
    return render(
        request,
        "bulk.html",
        nav="bulk",
        jobs=jobs,
        functions=functions,
        ranges=list(reads.RANGES),
        running=any(j.state == "running" for j in jobs),
    )


async def bulk_start(request: Request) -> Response:
    found = services(request)
    fields = await read_form(request)
    action = fields.get("action")
    try:
        if action not in ("replay", "cancel"):
            raise OutlastError("choose Replay runs or Cancel runs")
        query = reads.parse_run_query(fields, found.engine.clock.now_ms())
        job = await found.bulk.start(action, query.filter(before=None))  # type: ignore[arg-type]
    except (OutlastError, reads.BadQueryError) as exc:
        return redirect("/bulk", message=str(exc), kind="error")
    verb = "Replaying" if action == "replay" else "Cancelling"
    return redirect("/bulk", message=f"{verb} {job.total:,} runs.")
