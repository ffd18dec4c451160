"""Paused functions as an engine sees them: the store's set, read again at most a second after the
last read (so every worker sees a pause within a second), and at once after this engine changed it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from outlast.storage.base import Store

MAX_AGE_S = 1.0


class PausedFunctions:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._known: set[tuple[str, str]] = set()
        self._read_at: float | None = None

    async def is_paused(self, app_id: str, function_id: str) -> bool:
        """Whether the function is paused (as of at most a second ago; wall-clock time, also under
        a virtual clock)."""
        if self._read_at is None or time.monotonic() - self._read_at >= MAX_AGE_S:
            self._known = set(await self.store.paused_functions())
            self._read_at = time.monotonic()
        return (app_id, function_id) in self._known

    def forget(self) -> None:
        """This engine paused or resumed a function: read the set again next time."""
        self._read_at = None
