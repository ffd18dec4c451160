"""The bench's 3-step function (`inngest_app`) served by a Connect worker on the official Inngest
Python SDK (`inngest[connect]`): one outbound WebSocket to the server, no HTTP port."""

from __future__ import annotations

import asyncio

from inngest.connect import connect

from bench.apps.inngest_app import client, three_steps


async def main() -> None:
    await connect([(client, [three_steps])], instance_id="bench-connect").start()


if __name__ == "__main__":
    asyncio.run(main())
