"""Pausing Python's cyclic garbage collector while bulk work allocates many long-lived objects.

A bulk ingest of 100,000 events creates several objects per event that all stay alive until it
ends; each collection of the oldest generation walks them all again. That costs about a quarter
of the ingest's time, and it finds nothing to free. The pause is process-wide (the collector is
one for all threads), counted, so overlapping pauses end with the last of them, and it never
turns on a collector that was off before. Only work on `GC_PAUSE_MIN` objects or more pauses it
(a long send, not a server's requests of 100 events), so the collector is seldom off.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: events (or similar items) from which a bulk operation pauses the collector
GC_PAUSE_MIN = 10_000
_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
