"""The Connect gateway's own port (Inngest's default is 8289), beside the server's main one.

`outlast dev` and `start` also listen on `--connect-port` (default 8289, `OUTLAST_CONNECT_PORT`;
`off` or 0: no second port) with the same app, so a worker configured as for Inngest's dev
server finds the gateway where it expects it, and `/v0/connect/start` names this port in the
gateway URL (`Gateway.port`). The port being busy does not stop the server: it warns, and the
gateway stays reachable on the main port, which `/v0/connect/start` then names instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("outlast.connect")

DEFAULT_CONNECT_PORT = 8289


def parse_connect_port(text: str) -> int:
    """A port from `text`, 0 for `off`; ValueError says what was expected."""
    value = text.strip().lower()
    if value == "off":
        return 0
    if value.isdigit() and int(value) <= 65535:
        return int(value)
    raise ValueError(f"expected a port from 1 to 65,535, or 'off' or 0 for none, got {text!r}")


async def listen(server: Any, *, host: str, port: int) -> asyncio.Server | None:
    """Serve uvicorn `server`'s app on `port` too; None (after a warning) when it cannot be bound.

    Connections on this port are the uvicorn server's own (same protocol, state and shutdown)."""
    config = server.config
    loop = asyncio.get_running_loop()

    def protocol() -> asyncio.Protocol:
        made: asyncio.Protocol = config.http_protocol_class(
            config=config, server_state=server.server_state, app_state=server.lifespan.state, _loop=loop
        )
        return made

    try:
        return await loop.create_server(protocol, host=host, port=port, backlog=config.backlog)
    except OSError as exc:
        log.warning(
            "Connect: the gateway port %d could not be opened (%s); Connect workers are sent to the main port instead",
            port,
            exc.strerror or exc,
        )
        return None
