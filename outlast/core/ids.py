"""Identifiers: monotonic ULIDs for events and runs (sortable by creation time)."""

from __future__ import annotations

import functools
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
    return _time_part(ms) + _random_part(_reserve(ms, 1) & _RANDOM)


def new_ulids(count: int, now_ms: int | None = None) -> list[str]:
    """`count` ULIDs for time `now_ms`, increasing (as many calls of `new_ulid` would give, faster)."""
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    first, prefix = _reserve(ms, count), _time_part(ms)
    return [prefix + _random_part(rand & _RANDOM) for rand in range(first, first + count)]


_RANDOM = (1 << 80) - 1


def _reserve(ms: int, count: int) -> int:
    """The first of `count` random parts for millisecond `ms`, following the last one given out."""
    with _lock:
        previous = _recent.pop(ms, None)
        first = previous + 1 if previous is not None else int.from_bytes(os.urandom(10), "big") >> 1
        _recent[ms] = first + count - 1
        if len(_recent) > _REMEMBERED_MS:
            _recent.popitem(last=False)
    return first


#: every pair of characters, indexed by the 10 bits they encode (a bulk ingest makes three ids per event)
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int) -> str:
    """The 128-bit value as 26 characters of Crockford's base32, ten bits (two characters) at a time."""
    return _time_chars(value >> 80) + _random_part(value & _RANDOM)


def _time_chars(ms: int) -> str:
    """The first 10 characters: the millisecond."""
    p = _PAIRS
    return p[(ms >> 40) & 1023] + p[(ms >> 30) & 1023] + p[(ms >> 20) & 1023] + p[(ms >> 10) & 1023] + p[ms & 1023]


#: the same for every id made in a millisecond
_time_part = functools.lru_cache(maxsize=_REMEMBERED_MS)(_time_chars)


def _random_part(rand: int) -> str:
    """The last 16 characters: the 80 random bits. Ids made one after another differ in their
    last ten bits only, most of the time: the first 14 characters are remembered and reused."""
    global _last_high
    high, head = _last_high
    if rand >> 10 != high:
        p = _PAIRS
        head = (
            p[(rand >> 70) & 1023]
            + p[(rand >> 60) & 1023]
            + p[(rand >> 50) & 1023]
            + p[(rand >> 40) & 1023]
            + p[(rand >> 30) & 1023]
            + p[(rand >> 20) & 1023]
            + p[(rand >> 10) & 1023]
        )
        _last_high = (rand >> 10, head)  # one assignment: a thread sees the old pair or the new one
    return head + _PAIRS[rand & 1023]


#: (rand >> 10, its 14 characters) of the last id made
_last_high: tuple[int, str] = (-1, "")


def ulid_floor(ms: int) -> str:
    """The smallest ULID of millisecond `ms`: `id >= ulid_floor(t)` means "made at or after t"."""
    return _encode(max(0, ms) << 80)


def new_token() -> str:
    return os.urandom(8).hex()
