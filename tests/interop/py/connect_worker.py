"""A Connect worker on the official Inngest Python SDK (`inngest[connect]` from PyPI): the interop
app's functions (app.py), served over one outbound WebSocket to Outlast, with no HTTP port.

Run by tests/interop/test_connect.py; CONNECT_MAX_CONCURRENCY sets `max_worker_concurrency`.
"""

from __future__ import annotations

import asyncio
import os

from app import FUNCTIONS, client
from inngest.connect import connect


async def main() -> None:
    capacity = os.environ.get("CONNECT_MAX_CONCURRENCY")
    connection = connect(
        [(client, FUNCTIONS)],
        instance_id=os.environ.get("CONNECT_INSTANCE_ID", "py-connect-worker"),
        max_worker_concurrency=int(capacity) if capacity else None,
    )
    await connection.start()


if __name__ == "__main__":
    asyncio.run(main())
