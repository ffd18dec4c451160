"""Who may use the dashboard and the read API, and which requests may act.

Production mode requires a login: the dashboard password (`OUTLAST_DASHBOARD_PASSWORD`) typed into
the login form, which sets a signed session cookie (HttpOnly, SameSite=Strict, Secure when served
over HTTPS), or sent by API clients as `Authorization: Bearer <password>`. With no password set,
production mode locks the dashboard and the read API instead of opening them. Development mode
needs no login.

Every action is protected against cross-site requests in both modes: dashboard forms carry a CSRF
token that must equal the `outlast_csrf` cookie (double submit; the cookie is SameSite=Strict),
and API actions are POSTs with `application/json` bodies or DELETEs, which a browser sends
cross-site only after a CORS preflight that Outlast never grants. The guards that apply this to
pages and endpoints are in `outlast.server.guards`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response

from outlast.server import guesses
from outlast.server.body import read_form
from outlast.server.mode import ServerConfig

SESSION_COOKIE = "outlast_session"
CSRF_COOKIE = "outlast_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_SECONDS = 7 * 24 * 3600


class Auth:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        password = config.dashboard_password
        #: the session key follows the password: changing the password ends every session
        self._key = hashlib.sha256(b"outlast-session\0" + password.encode()).digest() if password else b""

    @property
    def required(self) -> bool:
        return self.config.production

    @property
    def locked(self) -> bool:
        """Production mode with no password: nobody can log in."""
        return self.required and not self.config.dashboard_password

    # -- passwords and sessions ----------------------------------------------------------------

    def password_ok(self, candidate: str) -> bool:
        password = self.config.dashboard_password
        return bool(password) and hmac.compare_digest(candidate.encode(), password.encode())

    def session_value(self, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_SECONDS)
        payload = f"v1.{expires}.{secrets.token_hex(8)}"
        return f"{payload}.{self._sign(payload)}"

    def session_ok(self, value: str | None, now: float | None = None) -> bool:
        if not value or not self._key or value.count(".") != 3:
            return False
        payload, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return False
        expires = payload.split(".")[1]
        return expires.isdigit() and int(expires) > (now or time.time())

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def try_password(self, request: Request, candidate: str) -> bool:
        """Whether `candidate` is the password; raises TooManyGuessesError when this client (or
        everyone) failed too often to have it checked now."""
        return guesses.check(request, self.config.guess_limits, lambda: self.password_ok(candidate))

    def logged_in(self, request: Request) -> bool:
        if not self.required:
            return True
        if self.locked:
            return False
        if self.session_ok(request.cookies.get(SESSION_COOKIE)):
            return True  # a session is not a guess: never slowed
        bearer = request.headers.get("authorization", "")
        return bearer.lower().startswith("bearer ") and self.try_password(request, bearer[7:].strip())


def json_request(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


async def csrf_ok(request: Request) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = (await read_form(request)).get(CSRF_FIELD, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode())


def csrf_token(request: Request) -> str:
    """The token forms carry: the cookie's, or a new one (set on the response by the guard)."""
    token = request.cookies.get(CSRF_COOKIE) or request.scope.setdefault("outlast.csrf", secrets.token_urlsafe(24))
    return str(token)


def ensure_csrf_cookie(request: Request, response: Response) -> None:
    new = request.scope.get("outlast.csrf")
    if new and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(
            CSRF_COOKIE, new, httponly=True, samesite="strict", path="/", secure=request.url.scheme == "https"
        )


def login_next(request: Request) -> str:
    """The current path and query, quoted for the login form's `next`."""
    from urllib.parse import quote

    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return quote(target, safe="")


def safe_next(target: str | None) -> str:
    """Only local paths: a login link cannot send the user elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
