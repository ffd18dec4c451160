"""The op vocabulary's translation into commits, without an engine or a store."""

from __future__ import annotations

import random
from typing import Any

import pytest

from outlast.core import jsonutil
from outlast.core.models import EventRecord, Finish, MemoEntry, RunState, Suspend
from outlast.core.ops import (
    INVOKE_TIMEOUT_ERROR,
    MAX_SLEEP_MS,
    FunctionError,
    InvokeFunction,
    Lease,
    OpRules,
    RunComplete,
    SendEvent,
    Sleep,
    StepAttemptFailed,
    StepFailed,
    StepRun,
    Suspended,
    WaitForEvent,
    outcome_commit,
    step_commit,
    wake_time,
)
from outlast.core.retry import ErrorInfo, RetryPolicy

NOW = 1_700_000_000_000
LEASE = Lease(item_id="item", token="token")
TRIGGER = EventRecord(id="E1", name="shop/order", data={"order": "o1", "total": 5}, user={}, ts=NOW)


def run_state(*entries: MemoEntry, attempt: int = 0) -> RunState:
    return RunState(
        run_id="R1",
        app_id="shop",
        function_id="fn",
        status="running",
        events=[TRIGGER],
        memo={e.key: e for e in entries},
        attempt=attempt,
        created_at=NOW,
        started_at=NOW,
    )


def rules(max_attempts: int = 3, **overrides: Any) -> OpRules:
    policy = RetryPolicy(max_attempts=max_attempts, rng=random.Random(0))
    return OpRules(policy=policy, **overrides)


def commit_of(*ops: Any, state: RunState | None = None, **rule_overrides: Any) -> Any:
    return step_commit(state or run_state(), list(ops), lease=LEASE, now=NOW, rules=rules(**rule_overrides))


def test_a_step_result_becomes_a_completed_memo_row() -> None:
    c = commit_of(StepRun(key="k", step_id="charge", output={"ok": True}, started_at=NOW - 5))
    [w] = c.steps
    assert (w.status, w.attempts, w.output, w.started_at, w.ended_at) == ("completed", 1, {"ok": True}, NOW - 5, NOW)
    assert (c.item_id, c.lease_token, c.run_id, c.outcome) == ("item", "token", "R1", None)


def test_a_late_duplicate_of_a_final_step_writes_nothing() -> None:
    done = MemoEntry(key="k", step_id="charge", kind="run", status="completed", output=1)
    assert commit_of(StepRun(key="k", step_id="charge", output=2), state=run_state(done)).steps == []


def test_a_step_error_is_retried_on_the_backoff_table_until_its_attempts_are_spent() -> None:
    error = ErrorInfo(name="ConnectionError", message="down")
    first = commit_of(StepAttemptFailed(key="k", step_id="s", error=error)).steps[0]
    assert (first.status, first.attempts) == ("retrying", 1)
    assert NOW + 15_000 <= first.deadline <= NOW + 16_500  # 15 s plus up to 10 % jitter
    second_try = MemoEntry(key="k", step_id="s", kind="run", status="retrying", attempts=2, started_at=NOW - 60_000)
    last = commit_of(StepAttemptFailed(key="k", step_id="s", error=error), state=run_state(second_try)).steps[0]
    assert (last.status, last.attempts, last.error, last.started_at) == ("failed", 3, error.to_json(), NOW - 60_000)


def test_a_non_retriable_error_or_a_step_failure_is_final_at_once() -> None:
    no_retry = ErrorInfo(name="NonRetriableError", message="no", no_retry=True)
    assert commit_of(StepAttemptFailed(key="k", step_id="s", error=no_retry)).steps[0].status == "failed"
    assert commit_of(StepFailed(key="k", step_id="s", error=no_retry)).steps[0].status == "failed"


def test_retry_after_is_honoured_and_clamped_between_one_second_and_a_day() -> None:
    soon = ErrorInfo(name="E", message="m", retry_at=NOW + 10)
    late = ErrorInfo(name="E", message="m", retry_at=NOW + 10 * 86_400_000)
    assert commit_of(StepAttemptFailed(key="k", step_id="s", error=soon)).steps[0].deadline == NOW + 1_000
    assert commit_of(StepAttemptFailed(key="k", step_id="s", error=late)).steps[0].deadline == NOW + 86_400_000


def test_an_output_over_the_limit_fails_the_step_with_payload_too_large() -> None:
    [w] = commit_of(StepRun(key="k", step_id="big", output="x" * 100), max_output_bytes=50).steps
    assert w.status == "failed" and w.error is not None and w.error["name"] == "PayloadTooLargeError"
    assert "big" in w.error["message"] and "50 bytes" in w.error["message"]


def test_a_sleep_is_pending_until_its_time_and_done_at_once_if_that_time_has_passed() -> None:
    [pending] = commit_of(Sleep(key="k", step_id="nap", until_ms=NOW + 60_000)).steps
    assert (pending.status, pending.deadline, pending.detail) == ("sleeping", NOW + 60_000, {"until": NOW + 60_000})
    [done] = commit_of(Sleep(key="k", step_id="nap", until_ms=NOW - 1)).steps
    assert done.status == "completed"


def test_a_sleep_longer_than_a_year_fails_the_step() -> None:
    [w] = commit_of(Sleep(key="k", step_id="nap", until_ms=NOW + MAX_SLEEP_MS + 1)).steps
    assert w.status == "failed" and "one year" in (w.error or {})["message"]


def test_a_wait_on_an_equality_with_the_trigger_is_indexed_with_the_value_precomputed() -> None:
    c = commit_of(
        WaitForEvent(
            key="k",
            step_id="paid",
            event="shop/paid",
            expires_at=NOW + 1000,
            expression="event.data.order == async.data.order",
        )
    )
    [wait] = c.waits
    assert (wait.kind, wait.event_name, wait.match_field, wait.match_value, wait.expression, wait.step_key) == (
        "wait",
        "shop/paid",
        "data.order",
        jsonutil.dumps("o1"),
        None,
        "k",
    )
    assert c.steps[0].status == "waiting" and c.steps[0].detail == {
        "event": "shop/paid",
        "if": "event.data.order == async.data.order",
        "until": NOW + 1000,
    }


def test_any_other_wait_keeps_its_expression_and_a_missing_one_matches_any_event() -> None:
    [wait] = commit_of(
        WaitForEvent(
            key="k", step_id="w", event="e/x", expires_at=NOW + 1000, expression="async.data.total > event.data.total"
        )
    ).waits
    assert (wait.match_field, wait.expression) == (None, "async.data.total > event.data.total")
    [anything] = commit_of(
        WaitForEvent(key="k", step_id="w", event="e/x", expires_at=NOW + 1000, expression=None)
    ).waits
    assert anything.expression == "true"


@pytest.mark.parametrize(
    ("event", "expression", "expires", "problem"),
    [
        ("inngest/scheduled.timer", None, NOW + 1000, "reserved"),
        ("e/x", "event.data.", NOW + 1000, "invalid expression"),
        ("e/x", None, NOW + MAX_SLEEP_MS + 1, "one year"),
    ],
)
def test_a_wait_that_could_never_resolve_fails_the_step(
    event: str, expression: str | None, expires: int, problem: str
) -> None:
    c = commit_of(WaitForEvent(key="k", step_id="w", event=event, expression=expression, expires_at=expires))
    assert c.waits == [] and c.steps[0].status == "failed" and problem in (c.steps[0].error or {})["message"]


def test_a_wait_with_an_empty_timeout_expires_at_once_with_no_event() -> None:
    [w] = commit_of(WaitForEvent(key="k", step_id="w", event="e/x", expression=None, expires_at=NOW)).steps
    assert (w.status, w.output) == ("completed", None)


def test_an_invoke_sends_the_invoked_event_and_waits_for_the_childs_finish() -> None:
    c = commit_of(
        InvokeFunction(key="k", step_id="child", function_slug="shop-email", data={"to": "u1"}, expires_at=NOW + 5000)
    )
    [event] = c.events
    assert event.name == "inngest/function.invoked" and event.data["to"] == "u1"
    assert event.data["_inngest"] == {
        "fn_id": "shop-email",
        "correlation_id": "R1.k",
        "expire": NOW + 5000,
        "source_app_id": "shop",
        "source_fn_id": "fn",
    }
    [wait] = c.waits
    assert (wait.kind, wait.event_name, wait.match_field, wait.match_value) == (
        "invoke",
        "inngest/function.finished",
        "data.correlation_id",
        jsonutil.dumps("R1.k"),
    )
    assert (c.steps[0].status, c.steps[0].timeout_output) == ("invoking", INVOKE_TIMEOUT_ERROR)


def test_an_invoke_without_a_timeout_waits_a_year_and_one_of_an_unknown_function_fails_at_once() -> None:
    [w] = commit_of(InvokeFunction(key="k", step_id="c", function_slug="shop-x", data={})).steps
    assert w.deadline == NOW + MAX_SLEEP_MS
    unknown = commit_of(
        InvokeFunction(key="k", step_id="c", function_slug="gone-fn", data={}),
        known_function=lambda slug: slug != "gone-fn",
    )
    assert unknown.events == [] and unknown.steps[0].status == "failed"
    assert "gone-fn" in (unknown.steps[0].error or {})["message"]


def test_sent_events_are_committed_with_the_step_that_returns_their_ids() -> None:
    sent = [EventRecord(id="E9", name="shop/confirmed", data={}, user={}, ts=NOW)]
    c = commit_of(SendEvent(key="k", step_id="send", events=sent))
    assert c.events == sent and (c.steps[0].kind, c.steps[0].output) == ("send_event", ["E9"])


def test_steps_beyond_the_limit_fail() -> None:
    existing = MemoEntry(key="a", step_id="a", kind="run", status="completed")
    c = commit_of(StepRun(key="b", step_id="b", output=1), state=run_state(existing), max_steps_per_run=1)
    assert c.steps[0].status == "failed" and "max_steps_per_run" in (c.steps[0].error or {})["message"]


def outcome(o: Any, *, state: RunState | None = None, suspended: bool = False, **rule_overrides: Any) -> Any:
    return outcome_commit(
        state or run_state(), o, lease=LEASE, now=NOW, rules=rules(**rule_overrides), suspended_in_attempt=suspended
    ).outcome


def test_run_complete_finishes_the_run_with_its_output_and_triggers() -> None:
    finish = outcome(RunComplete(output={"status": "ok"}))
    assert finish == Finish(status="completed", output={"status": "ok"}, trigger_events=[TRIGGER])


def test_an_output_over_the_limit_fails_the_run() -> None:
    finish = outcome(RunComplete(output="y" * 100), max_output_bytes=50)
    assert isinstance(finish, Finish) and finish.status == "failed"
    assert (finish.error or {})["name"] == "PayloadTooLargeError"


def test_a_function_error_is_retried_by_replay_then_fails_the_run() -> None:
    error = ErrorInfo(name="ValueError", message="bad")
    retry = outcome(FunctionError(error=error))
    assert isinstance(retry, Suspend) and retry.attempt == 1 and retry.error == error.to_json()
    assert NOW + 15_000 <= retry.due_at <= NOW + 16_500
    final = outcome(FunctionError(error=error), state=run_state(attempt=2))
    assert final == Finish(status="failed", error=error.to_json(), trigger_events=[TRIGGER])


def test_an_attempt_that_suspended_cannot_finish_the_run_whatever_the_handler_returned() -> None:
    pending = MemoEntry(key="k", step_id="nap", kind="sleep", status="sleeping", deadline=NOW + 3_600_000)
    for o in (RunComplete(output="swallowed"), FunctionError(error=ErrorInfo(name="E", message="m"))):
        assert outcome(o, state=run_state(pending), suspended=True) == Suspend(due_at=NOW + 3_600_000)


def test_a_suspended_run_wakes_at_its_earliest_deadline_or_retry() -> None:
    memo = [
        MemoEntry(key="a", step_id="a", kind="sleep", status="sleeping", deadline=NOW + 500),
        MemoEntry(key="b", step_id="b", kind="run", status="retrying", deadline=NOW + 200),
        MemoEntry(key="c", step_id="c", kind="run", status="completed", deadline=None),
    ]
    assert wake_time(memo, NOW) == NOW + 200
    assert outcome(Suspended(), state=run_state(*memo)) == Suspend(due_at=NOW + 200)
    assert wake_time([], NOW) == NOW
