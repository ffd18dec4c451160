"""Step keys, hashed exactly as Inngest SDKs hash them so a memo means the same to both."""

from __future__ import annotations

import functools
import hashlib


@functools.lru_cache(maxsize=4096)
def _sha1_hex(raw: str) -> str:
    """SHA-1 hex of `raw`, remembered: every run of a function hashes the same few step ids, and
    on an idle worker each hash through OpenSSL costs some 20 µs of cold caches, not the 0.4 µs a
    hot loop measures (issue 28); the lookup of a remembered one is a dict probe."""
    return hashlib.sha1(raw.encode()).hexdigest()


def step_key(step_id: str, index: int) -> str:
    """SHA-1 hex of the user's id, or of `id:n` for its n-th repeat (n >= 1) in one run."""
    return _sha1_hex(step_id if index == 0 else f"{step_id}:{index}")


class StepCounter:
    """Numbers the step ids of one attempt of a run, as inngest-js does.

    An id not used yet in the attempt keeps its own key; a repeat takes the next `id:n` not used
    yet. So an explicit id that equals an earlier repeat's key (`s`, `s` keyed `s:1`, then `s:1`)
    is a repeat of `s:1`, keyed `s:1:1`: it runs its own body, never answered from another's memo.
    """

    def __init__(self) -> None:
        self._used: set[str] = set()
        #: the next repeat index to try for each id
        self._next: dict[str, int] = {}

    def next_key(self, step_id: str) -> str:
        raw = step_id
        if step_id in self._used or step_id in self._next:
            index = self._next.get(step_id, 1)
            while f"{step_id}:{index}" in self._used:
                index += 1
            raw = f"{step_id}:{index}"
            self._next[step_id] = index + 1
        else:
            self._next[step_id] = 1
        self._used.add(raw)
        return _sha1_hex(raw)
