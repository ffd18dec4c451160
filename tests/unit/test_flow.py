"""GCRA arithmetic for throttle (delays starts) and rate limit (drops the excess)."""

from outlast.core import flow


def test_a_throttle_lets_limit_plus_burst_start_at_once_then_one_per_interval() -> None:
    tat, starts = None, []
    for _ in range(5):  # limit 2 per 4 s, burst 1: interval 2 s
        start, tat = flow.throttle(tat, 0, 2, 4000, 1)
        starts.append(start)
    assert starts == [0, 0, 0, 2000, 4000]


def test_a_throttle_forgets_old_arrivals() -> None:
    _start, tat = flow.throttle(None, 0, 1, 1000, 1)
    start, _tat = flow.throttle(tat, 60_000, 1, 1000, 1)
    assert start == 60_000


def test_a_rate_limit_admits_limit_runs_per_period_and_refuses_the_rest() -> None:
    tat, admitted = None, []
    for now in (0, 1, 2, 3):  # 2 per 10 s
        ok, tat = flow.rate_limit(tat, now, 2, 10_000)
        admitted.append(ok)
    assert admitted == [True, True, False, False]
    ok, _ = flow.rate_limit(tat, 10_000, 2, 10_000)
    assert ok


def test_a_refused_run_does_not_move_the_rate_limit_window() -> None:
    ok, tat = flow.rate_limit(None, 0, 1, 10_000)
    refused, same = flow.rate_limit(tat, 5_000, 1, 10_000)
    assert ok and not refused and same == tat
