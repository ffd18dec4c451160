"""The garbage collector: overlapping pauses end with the last, a collector that was off stays
off, and the tuning of Outlast's own processes still collects cycles and is undone after."""

from __future__ import annotations

import gc
import weakref

from outlast.core.collector import SERVICE_GEN0_THRESHOLD, gc_paused, tuned_for_service


def test_overlapping_pauses_turn_the_collector_on_again_when_the_last_ends() -> None:
    assert gc.isenabled()
    outer = gc_paused()
    outer.__enter__()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    outer.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_tuned_process_freezes_start_up_and_still_collects_cycles_made_later() -> None:
    defaults = gc.get_threshold()
    loaded = _Cycle()  # alive at start-up: frozen, never walked again
    with tuned_for_service():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (SERVICE_GEN0_THRESHOLD, *defaults[1:])
        garbage = weakref.ref(_Cycle())  # a cycle made while serving, unreachable at once
        assert garbage() is not None  # reference counting cannot free a cycle
        gc.collect()
        assert garbage() is None
    assert gc.get_threshold() == defaults
    assert gc.get_freeze_count() == 0
    assert loaded.me is loaded
