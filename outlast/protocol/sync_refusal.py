"""Why an app refused a sync (`PUT` on its serve URL), in words a user can act on.

An SDK that cannot sync answers with an error status and, depending on the SDK, a message or
only a code: `inngest@4` in cloud mode without a signing key answers `500
{"code": "internal_server_error"}` and writes the real reason to its own log only. So the
explanation is the app's own words (message, error, code) plus, for the answers that have one
usual cause, that cause and its fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the response headers by which an Inngest SDK says it produced the answer itself
SDK_HEADERS = ("x-inngest-sdk", "x-inngest-sdk-handled")


def app_words(body: Any, text: str) -> str:
    """What the app said: its message, error and code, or the start of its body."""
    if not isinstance(body, dict):
        return text.strip()[:200]
    said = [str(body[k]) for k in ("message", "error") if isinstance(body.get(k), str | dict) and body.get(k)]
    code = body.get("code")
    if isinstance(code, str) and code:
        said.append(f"code {code}")
    return "; ".join(said) if said else text.strip()[:200]


def likely_cause(*, status: int, headers: Mapping[str, str], body: Any, production: bool) -> str:
    """The usual reason for an SDK's failed sync answer, with its fix, or "" when there is none."""
    if status < 500 or not any(h in headers for h in SDK_HEADERS):
        return ""
    message = str(body.get("message") or body.get("error") or "") if isinstance(body, dict) else ""
    if message and "signing key" not in message.lower():
        return ""
    if production:
        return "likely cause: the app has no INNGEST_SIGNING_KEY; give it the same signing key as `outlast start`"
    return (
        "likely cause: the app runs in cloud mode without a signing key (inngest@4 does unless INNGEST_DEV=1); "
        "start it with INNGEST_DEV=1 and INNGEST_BASE_URL pointing at this server"
    )


def sync_refusal(*, url: str, status: int, headers: Mapping[str, str], body: Any, text: str, production: bool) -> str:
    """The whole explanation of a sync the app at `url` answered with `status`."""
    words = app_words(body, text)
    explained = f"{url} answered {status}: {words or '(no message)'}"
    cause = likely_cause(status=status, headers=headers, body=body, production=production)
    return f"{explained} — {cause}" if cause else explained


__all__ = ["app_words", "likely_cause", "sync_refusal"]
