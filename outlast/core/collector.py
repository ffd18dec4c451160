"""How Outlast treats Python's cyclic garbage collector: paused during bulk work, and tuned in
the processes Outlast itself runs.

Pausing: a bulk ingest of 100,000 events creates several objects per event that all stay alive
until it ends; each collection of the oldest generation walks them all again. That costs about
a quarter of the ingest's time, and it finds nothing to free. The pause is process-wide (the
collector is one for all threads), counted, so overlapping pauses end with the last of them,
and it never turns on a collector that was off before. Only work on `GC_PAUSE_MIN` objects or
more pauses it (a long send, not a server's requests of 100 events), so the collector is seldom
off.

Tuning (`tuned_for_service`): with the default first-generation threshold of 700, a worker's
steady stream of short-lived futures, tasks and rows starts a collection every few hundred
steps, and each older-generation collection walks every object the process holds, most of
them the modules and configuration loaded at start. On the 3-step benchmark that is about a
sixth of the worker's time, and it frees next to nothing (about 100 objects in 10,000 runs):
run state dies by reference counting. Outlast's own processes (`outlast dev`, `start`,
`worker`) therefore freeze what start-up loaded (`gc.freeze`: it is never walked again) and
collect the first generation every `SERVICE_GEN0_THRESHOLD` allocations instead. Cycles are
still found, later. A process that embeds the engine keeps its own settings unless it asks
for these.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: events (or similar items) from which a bulk operation pauses the collector
GC_PAUSE_MIN = 10_000
#: allocations (net of frees) between first-generation collections in Outlast's processes; the
#: default is 700. From 700 through 5,000 and 20,000 to 50,000 the 3-step benchmark's time in the
#: collector fell from 0.21 s to 0.05, 0.01 and 0.003 s per 10,000 runs (bench/README.md)
SERVICE_GEN0_THRESHOLD = 20_000
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


@contextlib.contextmanager
def tuned_for_service() -> Iterator[None]:
    """Freeze what is alive now and collect the young generation less often, until the block ends
    (then the thresholds are restored and the frozen objects are collectable again)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(SERVICE_GEN0_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
