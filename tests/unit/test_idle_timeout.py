"""How long an idle worker waits before it claims again (`worker.idle_timeout`)."""

import itertools

from outlast.runtime.worker import HELD_BACK_FIRST_S, idle_timeout

POLL_S = 1.0
NOW = 1_000_000


def test_nothing_due_waits_for_the_poll() -> None:
    assert idle_timeout(next_due=None, now_ms=NOW, poll_s=POLL_S, held_back=0) == POLL_S


def test_work_due_soon_is_waited_for_until_it_is_due() -> None:
    assert idle_timeout(next_due=NOW + 250, now_ms=NOW, poll_s=POLL_S, held_back=0) == 0.25
    assert idle_timeout(next_due=NOW + 60_000, now_ms=NOW, poll_s=POLL_S, held_back=0) == POLL_S


def test_due_work_the_claim_passed_over_does_not_make_the_worker_spin() -> None:
    """A run held back by a concurrency limit is due, yet no claim takes it until a slot frees
    (whose commit wakes the worker): waiting 0 would query the database thousands of times a
    second. The wait starts short and doubles up to the poll."""
    waits = [idle_timeout(next_due=NOW - 5, now_ms=NOW, poll_s=POLL_S, held_back=n) for n in range(10)]
    assert waits[0] == HELD_BACK_FIRST_S > 0
    assert all(b == min(POLL_S, 2 * a) for a, b in itertools.pairwise(waits))
    assert waits[-1] == POLL_S
    assert idle_timeout(next_due=NOW, now_ms=NOW, poll_s=POLL_S, held_back=1_000) == POLL_S
