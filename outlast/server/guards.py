"""The guards in front of the dashboard's pages and the JSON API: login (production mode), the
body limit of actions, and protection against cross-site requests (see `auth`).

Each wraps a module-level handler and reads the server's `Auth` from `app.state` per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from outlast.server.auth import csrf_ok, ensure_csrf_cookie, json_request, login_next
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.services import services

Handler = Callable[[Request], Awaitable[Response]]

CSRF_REFUSED = (
    "This form has expired or did not come from this dashboard (CSRF check failed). Reload the page and try again."
)


async def _too_large(request: Request) -> Response | None:
    """A form's 413 when its body is over the limit; None once the body is read within it."""
    try:
        await read_body(request)
    except BodyTooLargeError as exc:
        return Response(str(exc), status_code=413, media_type="text/plain")
    return None


def form_post(handler: Handler) -> Handler:
    """A form POST open to anyone (the login form): its body within the limit."""

    async def bounded(request: Request) -> Response:
        refused = await _too_large(request)
        return refused if refused is not None else await handler(request)

    return bounded


def page(handler: Handler) -> Handler:
    """A dashboard page or form action: login (production) and, for POST, the body limit and the
    CSRF token."""

    async def guarded(request: Request) -> Response:
        if not services(request).auth.logged_in(request):
            if request.method == "GET":
                return RedirectResponse(f"/login?next={login_next(request)}", status_code=303)
            return Response("Log in first.", status_code=401, media_type="text/plain")
        if request.method == "POST":
            if (refused := await _too_large(request)) is not None:
                return refused
            if not await csrf_ok(request):
                return Response(CSRF_REFUSED, status_code=403, media_type="text/plain")
        response = await handler(request)
        ensure_csrf_cookie(request, response)
        return response

    return guarded


def api(handler: Handler) -> Handler:
    """A JSON API endpoint: login (production); actions need a body within the limit, and a JSON
    body or a CSRF token."""

    async def guarded(request: Request) -> Response:
        auth = services(request).auth
        if not auth.logged_in(request):
            message = (
                "the dashboard is locked: production mode needs OUTLAST_DASHBOARD_PASSWORD"
                if auth.locked
                else "log in first, or send Authorization: Bearer <dashboard password>"
            )
            return JSONResponse({"error": message}, status_code=401)
        if request.method == "POST":
            try:
                await read_body(request)
            except BodyTooLargeError as exc:
                return JSONResponse({"error": str(exc)}, status_code=413)
            # PUT and DELETE are never sent cross-site without a preflight; a POST is, unless its body is JSON
            if not json_request(request) and not await csrf_ok(request):
                return JSONResponse(
                    {"error": "actions need a JSON body (Content-Type: application/json) or a CSRF token"},
                    status_code=403,
                )
        return await handler(request)

    return guarded
