"""`/metrics` for a process without the HTTP server (`outlast worker --metrics-port P`).

A minimal HTTP/1.1 responder on the worker's own event loop: no thread, no web framework. Each
scrape samples the queue, then answers with the exposition; any other path is 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from outlast.observability.metrics import Metrics

log = logging.getLogger("outlast.metrics")
_READ_TIMEOUT_S = 5.0


async def serve_metrics(metrics: Metrics, *, host: str, port: int) -> asyncio.Server:
    """Start serving; `port` 0 picks a free one (`server.sockets[0].getsockname()`)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
            method, path, *_ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if method == "GET" and path.split("?", 1)[0] == "/metrics":
                await metrics.sample()
                _respond(writer, "200 OK", metrics.exposition(), "text/plain; version=0.0.4; charset=utf-8")
            else:
                _respond(writer, "404 Not Found", b"only /metrics is served here\n", "text/plain")
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)


def _respond(writer: asyncio.StreamWriter, status: str, body: bytes, content_type: str) -> None:
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
