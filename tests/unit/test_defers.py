"""`defer()`'s opcodes read from the wire, kept as memo rows of their own kind, and sent back to
the SDK as Inngest sends them: in `defers` (with whether each can still be aborted), never in
`steps`; a refused defer fails nothing but itself."""

from __future__ import annotations

import json

from outlast.core.defers import (
    MAX_DEFERS_PER_RUN,
    DeferAbort,
    DeferAdd,
    DeferRow,
    defer_write,
    schedule_events,
)
from outlast.core.models import MemoEntry, RunState
from outlast.core.ops import Lease, OpRules, step_commit
from outlast.core.retry import RetryPolicy
from outlast.protocol.checkpoint import parse_checkpoint
from outlast.protocol.reply import Ops, parse_reply
from outlast.protocol.request import CallContext, call_body

NOW = 1_700_000_000_000
SDK = {"x-inngest-sdk": "inngest-js:v4.24.0"}
ADD = {
    "op": "DeferAdd",
    "id": "d1",
    "displayName": "later-1",
    "opts": {"fn_slug": "app-later", "input": {"n": 1}, "meta": {"sessions": {"c": "x"}}},
    "userland": {"id": "later-1"},
}
ABORT = {"op": "DeferAbort", "id": "a1", "displayName": "later-1", "opts": {"target_hashed_id": "d1"}}


def test_defer_opcodes_are_read_as_ops_not_refused() -> None:
    body = json.dumps([{"op": "StepRun", "id": "k1", "displayName": "one", "data": 5}, ADD, ABORT]).encode()
    reply = parse_reply(206, SDK, body, now_ms=NOW)
    assert isinstance(reply, Ops) and reply.count == 1  # lazy ops open no parallel group
    assert reply.steps[1:] == [
        DeferAdd(key="d1", step_id="later-1", function_slug="app-later", input={"n": 1}, meta={"sessions": {"c": "x"}}),
        DeferAbort(key="a1", step_id="later-1", target="d1"),
    ]
    checkpoint = parse_checkpoint({"qi_id": "item.token", "steps": [ADD]}, run_id="r", now_ms=NOW)
    assert [type(op) for op in checkpoint.ops] == [DeferAdd]


def run_state(memo: dict[str, MemoEntry]) -> RunState:
    return RunState(
        run_id="r", app_id="app", function_id="fn", status="running", events=[], memo=memo, attempt=0, created_at=NOW,
        started_at=NOW,
    )  # fmt: skip


def test_defers_are_memo_rows_written_once_and_refused_when_they_cannot_be_kept() -> None:
    ops = [
        DeferAdd(key="d1", step_id="ok", function_slug="app-later", input={"n": 1}),
        DeferAdd(key="d2", step_id="list", function_slug="app-later", input=[1]),
        DeferAdd(key="d3", step_id="noslug", function_slug="", input={}),
        DeferAbort(key="a1", step_id="ok", target="d1"),
    ]
    rules, lease = OpRules(policy=RetryPolicy(max_attempts=1)), Lease(item_id="i", token="t")
    commit = step_commit(run_state({}), ops, lease=lease, now=NOW, rules=rules)
    rows = {w.key: (w.kind, w.status, (w.error or {}).get("message", "")) for w in commit.steps}
    assert rows["d1"] == ("defer", "completed", "")
    assert rows["a1"] == ("defer_abort", "completed", "")
    assert rows["d2"][:2] == ("defer", "failed") and "must be a JSON object, got list" in rows["d2"][2]
    assert rows["d3"][:2] == ("defer", "failed") and "no function slug" in rows["d3"][2]
    replayed = step_commit(run_state({"d1": entry("d1")}), ops[:1], lease=lease, now=NOW, rules=rules)
    assert replayed.steps == []  # an SDK that reports a defer again changes nothing
    memo = {f"d{i}": entry(f"d{i}") for i in range(MAX_DEFERS_PER_RUN)}
    over = defer_write(memo, DeferAdd(key="x", step_id="x", function_slug="app-later", input={}), [], NOW)
    assert over.status == "failed" and f"at most {MAX_DEFERS_PER_RUN}" in (over.error or {})["message"]


def entry(key: str, kind: str = "defer", output: object = None) -> MemoEntry:
    return MemoEntry(key=key, step_id=key, kind=kind, status="completed", output=output, ended_at=NOW)


def test_the_request_sends_defers_apart_from_steps_and_the_stack() -> None:
    memo = [
        entry("s1", "run", 5),
        entry("d1", output={"function": "app-later", "input": {}}),
        entry("d2", output={"function": "app-later", "input": {}}),
        entry("a2", "defer_abort", {"target": "d2"}),
    ]
    ctx = CallContext(run_id="r", function_slug="app-fn", attempt=0, max_attempts=1, stack=["s1"])
    body = json.loads(call_body(events=[], memo=memo, ctx=ctx))
    assert body["steps"] == {"s1": {"data": 5}}
    assert body["defers"] == {"d1": {"abortable": True}, "d2": {"abortable": False}}


def test_one_event_per_kept_defer_carrying_its_input_and_parent() -> None:
    rows = [
        DeferRow(key="d1", kind="defer", status="completed", output={"function": "app-a", "input": {"n": 1}}),
        DeferRow(key="d2", kind="defer", status="completed", output={"function": "app-b", "input": None}),
        DeferRow(key="d3", kind="defer", status="completed", output={"function": "app-c", "input": {}}),
        DeferRow(key="a3", kind="defer_abort", status="completed", output={"target": "d3"}),
        DeferRow(key="d4", kind="defer", status="failed", output={"function": "app-d", "input": {}}),
    ]
    events = schedule_events(rows, app_id="app", function_id="fn", run_id="r1", now_ms=NOW)
    assert [(e.name, e.data.get("n"), e.data["_inngest"]["fn_slug"], e.ts) for e in events] == [
        ("inngest/deferred.schedule", 1, "app-a", NOW),
        ("inngest/deferred.schedule", None, "app-b", NOW),
    ]
    assert events[0].data["_inngest"]["parent_run_id"] == "r1" and len({e.id for e in events}) == 2
