"""A process that opens (and closes) stores at set times, for tests of concurrent starts.

    python -m tests.storage.opener START INTERVAL URL...

The i-th URL is opened at START + i * INTERVAL (epoch seconds), so several such processes open
each database at the same moment. One line per URL: `ok`, or the error's class and message.
"""

from __future__ import annotations

import asyncio
import sys
import time

from outlast.storage import open_store


async def open_and_close(url: str) -> None:
    store = open_store(url)
    await store.open()
    await store.close()


def wait_until(moment: float) -> None:
    while (left := moment - time.time()) > 0.002:
        time.sleep(left - 0.001)
    while time.time() < moment:
        pass  # the last millisecond spinning: the processes start within a few hundred microseconds


def main() -> None:
    start, interval, *urls = sys.argv[1:]
    for i, url in enumerate(urls):
        wait_until(float(start) + i * float(interval))
        try:
            asyncio.run(open_and_close(url))
            print("ok", flush=True)
        except Exception as exc:
            print(f"{type(exc).__name__}: {exc}", flush=True)


if __name__ == "__main__":
    main()
