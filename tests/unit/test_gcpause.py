"""Pausing the garbage collector: overlapping pauses end with the last, and a collector that was
off stays off."""

from __future__ import annotations

import gc

from outlast.core.gcpause import gc_paused


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
