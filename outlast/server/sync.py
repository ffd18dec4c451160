"""Inngest sync over HTTP: `POST /fn/register` (an SDK registering its functions), syncing an
app by URL (`PUT` on the app makes it register), and the state endpoints SDKs read when a
call's state is too large to send (`GET /v0/runs/{id}/batch`, `/actions`).

For the dashboard, the JSON API and the CLI: `sync_app_url(engine, url, ...)` syncs an app by its
serve URL, `resync_app(engine, app_id, ...)` syncs a stored app again and keeps a failure with it,
`remove_app(engine, app_id)` forgets one (`outlast.runtime.synced_apps`).

Production mode requires the bearer form of the signing key on `/fn/register` and `/v0/runs`;
a missing or wrong key gets a 401 saying which, and nothing is stored. Development mode
accepts any request, as Inngest's dev server does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.core.events import text_problem
from outlast.errors import FunctionConfigError, StoreError
from outlast.protocol.connect import CONNECT_SCHEME
from outlast.protocol.request import event_json, memo_map
from outlast.protocol.sync import SyncError, parse_register
from outlast.protocol.sync_refusal import sync_refusal
from outlast.runtime.engine import Engine
from outlast.runtime.synced_apps import record_sync_error, register_app, remove_app
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.mode import ServerConfig
from outlast.server.services import services

SERVER_KIND_HEADER = "X-Inngest-Server-Kind"
EXPECTED_KIND_HEADER = "x-inngest-expected-server-kind"
SYNC_TIMEOUT_S = 30.0


def server_kind(config: ServerConfig) -> str:
    """What Inngest's SDKs call this server: `dev` (no keys) or `cloud` (production)."""
    return "cloud" if config.production else "dev"


def _reply(request: Request, body: Any, status: int = 200) -> JSONResponse:
    kind = server_kind(services(request).config)
    return JSONResponse(body, status_code=status, headers={SERVER_KIND_HEADER: kind})


def _unauthorized(request: Request) -> JSONResponse | None:
    refusal = services(request).bearer.refusal(request, what="Inngest sync (/fn/register, /v0/runs)")
    return None if refusal is None else _reply(request, {"error": refusal}, 401)


async def register(request: Request) -> Response:
    if (refused := _unauthorized(request)) is not None:
        return refused
    kind = server_kind(services(request).config)
    expected = request.headers.get(EXPECTED_KIND_HEADER)
    if expected and expected != kind:
        return _reply(
            request,
            {
                "error": f"this server is a {kind!r} server, the SDK expected {expected!r} "
                "(dev mode SDKs sync to `outlast dev`, production ones to `outlast start`)"
            },
            400,
        )
    try:
        payload = jsonutil.loads(await read_body(request))
    except BodyTooLargeError as exc:
        return _reply(request, {"error": f"register {exc}"}, 413)
    except ValueError as exc:
        return _reply(request, {"error": f"register request is not valid JSON: {exc}"}, 400)
    return await _register(request, payload)


async def _register(request: Request, payload: Any) -> Response:
    engine = services(request).engine
    try:
        registered = await register_app(engine, parse_register(payload))
    except (FunctionConfigError, SyncError) as exc:
        app_id, url = _named_app(payload)
        if app_id and await engine.reads.get_app(app_id) is not None:  # a known app keeps the error
            await record_sync_error(engine, app_id, url, str(exc))
        return _reply(request, {"error": str(exc)}, 400)
    except StoreError as exc:
        return _reply(request, {"error": f"store unavailable, retry: {exc}"}, 503)
    return _reply(request, {"ok": True, "modified": registered.modified, "app_id": registered.app_id})


async def run_batch(request: Request) -> Response:
    if (refused := _unauthorized(request)) is not None:
        return refused
    reads = services(request).engine.reads
    run = await reads.get_run(request.path_params["run_id"])
    if run is None:
        return _reply(request, {"error": "run not found"}, 404)
    return _reply(request, [event_json(e) for e in await reads.get_events(run.event_ids)])


async def run_actions(request: Request) -> Response:
    if (refused := _unauthorized(request)) is not None:
        return refused
    run = await services(request).engine.reads.get_run(request.path_params["run_id"])
    if run is None:
        return _reply(request, {"error": "run not found"}, 404)
    return _reply(request, memo_map(run.steps))


async def dev_info(request: Request) -> Response:
    apps = await services(request).engine.reads.list_apps()
    kind = server_kind(services(request).config)
    return _reply(request, {"version": "outlast", "kind": kind, "apps": [{"id": a.id, "url": a.url} for a in apps]})


ROUTES: list[BaseRoute] = [
    Route("/fn/register", register, methods=["POST"]),
    Route("/v0/runs/{run_id}/batch", run_batch, methods=["GET"]),
    Route("/v0/runs/{run_id}/actions", run_actions, methods=["GET"]),
]
#: served in development mode only, as on Inngest's dev server
DEV_ROUTES: list[BaseRoute] = [Route("/dev", dev_info, methods=["GET"])]


def _named_app(payload: Any) -> tuple[str | None, str | None]:
    """The app id and URL a register payload names, read loosely (it may be the bad part)."""
    if not isinstance(payload, dict):
        return None, None
    lowered = {str(k).lower(): v for k, v in payload.items()}
    app_id, url = lowered.get("appname"), lowered.get("url")
    usable = isinstance(app_id, str) and app_id.strip() and text_problem(app_id) is None
    return (app_id if usable else None, url if isinstance(url, str) and text_problem(url) is None else None)


# -- syncing apps by URL (the dashboard and `--sdk-url` use these) --------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncResult:
    ok: bool
    url: str
    #: the app changed (False for an identical re-sync)
    modified: bool = False
    #: what the app answered, or why it could not be reached
    message: str = ""


async def sync_app_url(
    engine: Engine, url: str, *, production: bool = False, timeout_s: float = SYNC_TIMEOUT_S
) -> SyncResult:
    """Ask the app served at `url` to sync (`PUT`); it registers with this server, which must be
    serving already. The result says whether it worked and, if not, why.

    An SDK may answer the PUT with success even when its registration was refused (the Python SDK
    does), or register with another server than this one: so success is what the store shows — an
    app whose sync record changed during the request, without an error.
    """
    if problem := url_problem(url):
        return SyncResult(ok=False, url=url, message=problem)
    before = {a.id: (a.synced_at, a.error) for a in await engine.reads.list_apps()}
    headers = {SERVER_KIND_HEADER: "cloud" if production else "dev"}
    try:
        async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as client:
            response = await client.put(url, headers=headers)
    except httpx.HTTPError as exc:
        return SyncResult(ok=False, url=url, message=f"could not reach {url}: {exc or type(exc).__name__}")
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or body.get("error") or "")
    if response.status_code >= 300:
        refusal = sync_refusal(
            url=url,
            status=response.status_code,
            headers=response.headers,
            body=body,
            text=response.text,
            production=production,
        )
        return SyncResult(ok=False, url=url, message=refusal)
    changed = [a for a in await engine.reads.list_apps() if before.get(a.id) != (a.synced_at, a.error)]
    if not changed:
        said = message if message and "success" not in message.lower() else ""
        hint = said or "is its INNGEST_BASE_URL (or INNGEST_DEV) pointing here?"
        return SyncResult(ok=False, url=url, message=f"{url} answered but did not register with this server: {hint}")
    failed = next((a for a in changed if a.error), None)
    if failed is not None:
        return SyncResult(ok=False, url=url, message=f"app {failed.id!r} was refused: {failed.error}")
    names = ", ".join(repr(a.id) for a in changed)
    return SyncResult(ok=True, url=url, modified=bool(body.get("modified")), message=f"synced app {names}")


async def resync_app(engine: Engine, app_id: str, *, production: bool = False) -> SyncResult | None:
    """Sync a stored app again from its URL (the dashboard's and the API's resync); a failure is
    kept with the app (its functions stay). None when there is no synced app `app_id` with a URL."""
    app = await engine.reads.get_app(app_id)
    if app is None or not app.url:
        return None
    if app.url.startswith(f"{CONNECT_SCHEME}://"):  # nothing to call: its workers sync as they connect
        message = f"app {app_id!r} syncs over Connect, each time a worker connects: restart a worker to sync again"
        return SyncResult(ok=False, url=app.url, message=message)
    result = await sync_app_url(engine, app.url, production=production)
    if not result.ok:
        await record_sync_error(engine, app_id, app.url, result.message)
    return result


def url_problem(url: str) -> str | None:
    """Why `url` cannot be an app's serve URL, or None."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"not an http(s) URL: {url!r}"
    return None


__all__ = [
    "DEV_ROUTES",
    "ROUTES",
    "SyncResult",
    "remove_app",
    "resync_app",
    "server_kind",
    "sync_app_url",
    "url_problem",
]
