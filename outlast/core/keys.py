"""Step keys, hashed exactly as Inngest SDKs hash them so a memo means the same to both."""

from __future__ import annotations

import hashlib


def step_key(step_id: str, index: int) -> str:
    """SHA-1 hex of the user's id, or of `id:n` for its n-th repeat (n >= 1) in one run."""
    raw = step_id if index == 0 else f"{step_id}:{index}"
    return hashlib.sha1(raw.encode()).hexdigest()


class StepCounter:
    """Counts repeats of each user step id within one attempt of a run."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def next_key(self, step_id: str) -> str:
        index = self._seen.get(step_id, 0)
        self._seen[step_id] = index + 1
        return step_key(step_id, index)
