"""The queue between a store's callers and its connection threads.

Closing must not strand a caller. A request is either queued ahead of the stop markers, and so
served, or refused at once: "is the store open?" and queueing are one step under a lock, and so
are "stop accepting" and queueing the stop markers. Without the lock a caller could check, the
store close and answer what was left, and the caller then queue a request nobody will answer.
"""

from __future__ import annotations

import queue
import threading
from typing import Generic, TypeVar

from outlast.errors import StoreError

R = TypeVar("R")


class Intake(Generic[R]):
    def __init__(self, store: str) -> None:
        self._store = store  # named in the error a closed store gives, e.g. "SQLite"
        self._queue: queue.SimpleQueue[R | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._accepting = False

    def open(self) -> None:
        with self._lock:
            while not self._queue.empty():  # a stop marker left behind by a thread that failed
                self._queue.get_nowait()
            self._accepting = True

    def put(self, request: R) -> None:
        with self._lock:
            if not self._accepting:
                raise StoreError(f"the {self._store} store is not open")
            self._queue.put(request)

    def stop(self, threads: int) -> None:
        """Refuse new requests from now on; each of `threads` connection threads stops once it
        has served every request queued before this call."""
        with self._lock:
            self._accepting = False
            for _ in range(threads):
                self._queue.put(None)

    def take_group(self, most: int) -> list[R] | None:
        """Block for one request, then take those already waiting (up to `most`); None: stop.

        A stop marker met after the first request is put back for the next call to find.
        """
        first = self._queue.get()
        if first is None:
            return None
        group = [first]
        while len(group) < most:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            group.append(item)
        return group

    def leftovers(self) -> list[R]:
        """Stop accepting and take what no connection thread will serve, for the caller to refuse:
        requests behind a thread that failed, or left when the threads stopped."""
        with self._lock:
            self._accepting = False
            taken = []
            while not self._queue.empty():
                if (request := self._queue.get_nowait()) is not None:
                    taken.append(request)
            return taken
