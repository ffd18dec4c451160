"""Rendering: the Jinja2 environment (autoescaped: user data is never HTML), its filters, and flash
messages carried across a redirect. Every page sees the server's `config` (from `app.state`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from outlast.server.auth import csrf_token, ensure_csrf_cookie
from outlast.server.services import services

HERE = Path(__file__).parent
FLASH_COOKIE = "outlast_flash"
#: every page's: scripts, styles and images only from the dashboard's own files (no inline script or
#: style attribute runs, so injected markup cannot either), no framing (clickjacking), forms only to itself
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATUS_ICONS = {
    "queued": "◷",
    "running": "◉",
    "completed": "✓",
    "failed": "✕",
    "cancelled": "⊘",
    "skipped": "↷",
    "retrying": "↻",
    "sleeping": "☾",
    "waiting": "⧗",
    "invoking": "⇢",
    "lost": "?",
    "suspended": "☾",
}


#: the formats of `<time>` (see macros.html): the fallback text in UTC, until app.js shows local time
TIME_FORMATS = {"": "%Y-%m-%d %H:%M:%S", "short": "%m-%d %H:%M:%S", "clock": "%H:%M:%S.%f"}


def _ts(ms: int | None, format: str = "") -> str:
    """A UTC time, readable without the dashboard's script ("2026-12-07 15:45:33 UTC")."""
    if ms is None:
        return "—"
    text = datetime.fromtimestamp(ms / 1000, UTC).strftime(TIME_FORMATS[format])
    return f"{text[:-3] if format == 'clock' else text} UTC"


def _iso(ms: int | None) -> str:
    """The `datetime` of a `<time>`: UTC, to the millisecond ("2026-12-07T15:45:33.120Z")."""
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s" if ms < 10_000 else f"{ms // 1000} s"
    if ms < 3_600_000:
        return f"{ms // 60_000} m {ms % 60_000 // 1000} s"
    if ms < 86_400_000:
        return f"{ms // 3_600_000} h {ms % 3_600_000 // 60_000} m"
    return f"{ms // 86_400_000} d {ms % 86_400_000 // 3_600_000} h"


def _json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=False, default=str)


def _number(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ts=_ts,
        iso=_iso,
        duration=duration,
        json=_json,
        number=_number,
        urlquote=lambda s: quote(str(s), safe=""),
    )
    env.globals.update(icons=STATUS_ICONS, urlencode=urlencode)
    return env


ENV = _env()


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    flash = _take_flash(request)
    context.update(
        request=request,
        csrf=csrf_token(request),
        flash=flash,
        path=request.url.path,
        config=services(request).config,
    )
    response = HTMLResponse(ENV.get_template(template).render(**context), status_code=status, headers=PAGE_HEADERS)
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    ensure_csrf_cookie(request, response)
    return response


def redirect(url: str, *, message: str | None = None, kind: str = "ok") -> Response:
    """A 303 to `url`; `message` is shown once on the page it lands on."""
    response = RedirectResponse(url, status_code=303)
    if message:
        response.set_cookie(
            FLASH_COOKIE,
            quote(json.dumps({"kind": kind, "text": message[:500]})),
            path="/",
            httponly=True,
            samesite="strict",
            max_age=60,
        )
    return response


def _take_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        value = json.loads(unquote(raw))
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {"kind": "error" if value.get("kind") == "error" else "ok", "text": str(value.get("text", ""))}


def pretty_json(text: str) -> str:
    """JSON text indented for a form field; text that is not JSON stays as it is."""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
