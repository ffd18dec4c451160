"""The dashboard's login and logout (production mode; see `outlast.server.auth`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from outlast.server.auth import SESSION_COOKIE, SESSION_SECONDS, csrf_ok, safe_next
from outlast.server.body import read_form
from outlast.server.dashboard.render import redirect, render
from outlast.server.guesses import TooManyGuessesError
from outlast.server.services import services


async def login_form(request: Request) -> Response:
    auth = services(request).auth
    return render(
        request,
        "login.html",
        bare=True,
        next=safe_next(request.query_params.get("next")),
        locked=auth.locked,
        required=auth.required,
    )


async def login(request: Request) -> Response:
    auth = services(request).auth
    fields = await read_form(request)
    target = safe_next(fields.get("next"))
    if not await csrf_ok(request):
        return _refused(request, target, 403, "The form expired. Nothing was changed; try again.")
    try:
        right = auth.try_password(request, fields.get("password", ""))
    except TooManyGuessesError as exc:  # slowed per client and overall (`outlast.server.guesses`)
        refused = _refused(request, target, 429, f"{exc}.")
        refused.headers["Retry-After"] = str(exc.retry_after_s)
        return refused
    if not right:
        return _refused(request, target, 401, "Wrong password. You are not logged in; nothing was changed.")
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        auth.session_value(),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        path="/",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    if not await csrf_ok(request):
        return render(request, "error.html", status=403, message="The form expired; nothing was changed.")
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _refused(request: Request, target: str, status: int, error: str) -> Response:
    locked = services(request).auth.locked
    return render(
        request, "login.html", bare=True, status=status, next=target, locked=locked, required=True, error=error
    )
