"""The one retry decision, fed the same way by every driver."""

import random

from outlast.core.retry import BACKOFF_TABLE_S, ErrorInfo, RetryPolicy, backoff_ms, next_try

NOW = 1_000_000


def policy(max_attempts: int = 5, scale: float = 1.0) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, backoff_scale=scale, rng=random.Random(1))


def test_backoff_follows_inngests_table_with_at_most_ten_percent_jitter_capped_at_30s() -> None:
    rng = random.Random(7)
    for failed, base_s in enumerate(BACKOFF_TABLE_S, start=1):
        delay = backoff_ms(failed, rng=rng)
        assert base_s * 1000 <= delay <= base_s * 1000 + min(base_s * 100, 30_000)
    assert backoff_ms(50, rng=rng) >= BACKOFF_TABLE_S[-1] * 1000  # the table's last value repeats


def test_the_same_seed_gives_the_same_delays() -> None:
    assert [backoff_ms(3, rng=random.Random(9)) for _ in range(2)] == [backoff_ms(3, rng=random.Random(9))] * 2


def test_scale_shortens_delays() -> None:
    assert backoff_ms(1, scale=0.01, rng=random.Random(0)) < 200


def test_an_error_is_final_when_attempts_are_spent_or_it_asks_not_to_retry() -> None:
    error = ErrorInfo(name="E", message="m")
    assert next_try(error, failed_attempts=4, policy=policy(), now_ms=NOW) is not None
    assert next_try(error, failed_attempts=5, policy=policy(), now_ms=NOW) is None
    no_retry = ErrorInfo(name="E", message="m", no_retry=True)
    assert next_try(no_retry, failed_attempts=1, policy=policy(), now_ms=NOW) is None


def test_retry_at_wins_over_the_table_within_a_second_and_a_day() -> None:
    at = ErrorInfo(name="E", message="m", retry_at=NOW + 90_000)
    assert next_try(at, failed_attempts=1, policy=policy(), now_ms=NOW) == NOW + 90_000
    past = ErrorInfo(name="E", message="m", retry_at=NOW - 5)
    assert next_try(past, failed_attempts=1, policy=policy(), now_ms=NOW) == NOW + 1_000


def test_the_stored_error_shape_is_inngests() -> None:
    assert ErrorInfo(name="E", message="m").to_json() == {"name": "E", "message": "m"}
    assert ErrorInfo(name="E", message="m", stack="tb").to_json() == {"name": "E", "message": "m", "stack": "tb"}
