"""The one reader of request bodies, with its limit: every route that takes a body reads it here.

The body is read as it streams in and refused (`BodyTooLargeError`, a 413 in each route's own
error shape) as soon as it is known to be over the limit, by its Content-Length or by what has
arrived: a huge body is never held, and the rest of it is never read.
"""

from __future__ import annotations

from starlette.requests import Request

from outlast.errors import OutlastError

#: the limit of the event API, the JSON API, SDK registration and dashboard forms
MAX_BODY_BYTES = 16 * 1024 * 1024


class BodyTooLargeError(OutlastError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is over the limit of {limit} bytes")
        self.limit = limit


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request's body, at most `limit` bytes; raises `BodyTooLargeError` past it.

    The body read is kept where Starlette keeps it, so `request.form()` and a second read see it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    request._body = bytes(body)  # Starlette's own cache of the body (`Request.body`)
    return request._body


async def read_form(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, str]:
    """A form's fields (URL-encoded or multipart), its body read within `limit` first."""
    await read_body(request, limit)
    return {k: str(v) for k, v in (await request.form()).items()}
