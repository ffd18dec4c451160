"""Identifiers: monotonic ULIDs for events and runs (sortable by creation time)."""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_lock = threading.Lock()
#: the last random part given out for each recently used millisecond (a few are remembered, so a
#: virtual clock and the wall clock interleaving in one process both stay monotonic)
_recent: OrderedDict[int, int] = OrderedDict()
_REMEMBERED_MS = 64


def new_ulid(now_ms: int | None = None) -> str:
    """A 26-character ULID for time `now_ms`: ids sort by the time they encode, and ids made in
    one process for the same millisecond are strictly increasing."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        previous = _recent.pop(ms, None)
        rand = previous + 1 if previous is not None else int.from_bytes(os.urandom(10), "big") >> 1
        _recent[ms] = rand
        if len(_recent) > _REMEMBERED_MS:
            _recent.popitem(last=False)
    return _encode((ms << 80) | (rand & ((1 << 80) - 1)))


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid_floor(ms: int) -> str:
    """The smallest ULID of millisecond `ms`: `id >= ulid_floor(t)` means "made at or after t"."""
    return _encode(max(0, ms) << 80)


def new_token() -> str:
    return os.urandom(8).hex()
