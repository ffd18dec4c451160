"""Counting a store listener's calls, which come from its own thread, and awaiting them."""

from __future__ import annotations

import asyncio
import threading


class Heard:
    """Calls from a listener thread, awaited on the test's loop."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    async def reach(self, count: int) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: self.count >= count, timeout=30)

        assert await asyncio.to_thread(wait), f"heard {self.count} times, not {count}"
