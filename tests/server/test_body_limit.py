"""Every route that takes a body reads it through one reader with its limit: a body over the limit
gets a 413 as soon as the server knows (by Content-Length, or by what has streamed in), and the
rest of it is never read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from outlast.core.models import EventFilter
from outlast.runtime.engine import Engine
from tests.server.serving import serve

MIB = 1024 * 1024
KIB = 1024
HUGE = 200 * MIB
ROUTES = {
    # Inngest's APIs
    "/e/any-key": 16 * MIB,
    "/fn/register": 16 * MIB,
    "/v1/cancellations": 64 * KIB,
    "/v0/gql": 64 * KIB,
    # the JSON API
    "/api/runs/01J0000000000000000000000/cancel": 16 * MIB,
    "/api/runs/01J0000000000000000000000/rerun": 16 * MIB,
    "/api/events": 16 * MIB,
    "/api/functions/shop/nap/invoke": 16 * MIB,
    "/api/apps": 16 * MIB,
    "/api/apps/shop/resync": 16 * MIB,
    "/api/bulk": 16 * MIB,
    # the dashboard's forms
    "/login": 16 * MIB,
    "/logout": 16 * MIB,
    "/runs/01J0000000000000000000000/cancel": 16 * MIB,
    "/runs/01J0000000000000000000000/rerun": 16 * MIB,
    "/events": 16 * MIB,
    "/functions/shop/nap/invoke": 16 * MIB,
    "/apps": 16 * MIB,
    "/apps/shop/resync": 16 * MIB,
    "/apps/shop/remove": 16 * MIB,
    "/bulk": 16 * MIB,
}
#: one route per place that reads a body: streamed bodies (no Content-Length) are tried on these
READERS = ["/fn/register", "/v1/cancellations", "/v0/gql", "/api/events", "/events", "/login"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Engine]]:
    async with serve(tmp_path) as found:
        yield found


async def post_huge(url: str, path: str, *, declared: bool) -> tuple[bytes, int]:
    """POST a 200 MB body to `path` over a raw connection, sending while no answer has come; the
    answer's first bytes and how many body bytes were sent. A declared body is not sent at all:
    the server must answer from the Content-Length alone."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    framing = f"Content-Length: {HUGE}" if declared else "Transfer-Encoding: chunked"
    kind = (
        "application/x-www-form-urlencoded" if not path.startswith(("/api", "/v", "/e/", "/fn")) else "application/json"
    )
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n{framing}\r\n\r\n".encode())
    response = asyncio.ensure_future(_read_response(reader))
    sent, chunk = 0, b"x" * (256 * 1024)
    try:
        while not declared and sent < HUGE and not response.done():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            await asyncio.wait_for(writer.drain(), 30)
    except (ConnectionError, TimeoutError):
        pass  # the server answered and closed: it reads no more
    head = await asyncio.wait_for(response, 30)
    writer.close()
    return head, sent


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """The response's head and whole body (which may come in a write of its own)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    return head + await reader.readexactly(length)


@pytest.mark.parametrize("path", list(ROUTES))
async def test_a_declared_over_limit_body_is_refused_before_any_of_it_is_read(
    served: tuple[str, Engine], path: str
) -> None:
    url, engine = served
    head, _ = await post_huge(url, path, declared=True)
    assert head.startswith(b"HTTP/1.1 413"), head[:300]
    assert f"over the limit of {ROUTES[path]} bytes".encode() in head, head
    assert await engine.reads.list_events(EventFilter(limit=10)) == []


@pytest.mark.parametrize("path", READERS)
async def test_a_streamed_over_limit_body_is_refused_once_past_the_limit(served: tuple[str, Engine], path: str) -> None:
    url, engine = served
    head, sent = await post_huge(url, path, declared=False)
    assert head.startswith(b"HTTP/1.1 413"), head[:300]
    assert f"over the limit of {ROUTES[path]} bytes".encode() in head, head
    assert sent < 64 * MIB, f"the client could send {sent} bytes before the refusal"
    assert await engine.reads.list_events(EventFilter(limit=10)) == []


async def test_every_body_taking_api_route_is_tried_here_and_documents_its_413(served: tuple[str, Engine]) -> None:
    url, _ = served
    async with httpx.AsyncClient(base_url=url) as client:
        spec = (await client.get("/api/openapi.json")).json()
    posts = {path: ops["post"] for path, ops in spec["paths"].items() if "post" in ops}
    assert len(posts) == len([p for p in ROUTES if p.startswith("/api/")]), sorted(posts)
    assert all("413" in op["responses"] for op in posts.values())
