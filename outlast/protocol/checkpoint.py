"""Checkpoint requests (SDK -> server): inngest@4's async checkpointing.

    POST /v1/checkpoint/{run_id}/async
    {"run_id", "fn_id", "qi_id", "request_id", "generation_id", "request_started_at", "steps", "ts"}

`qi_id` is what the call request's `ctx.qi_id` said: here the dispatch, `<queue item id>.<lease
token>`, so a checkpoint is committed under the lease its call was made under (or refused as
stale). `steps` are opcodes, read as a 206's are (`reply.to_op`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outlast.core.ops import Lease, RunComplete, StepOp, StepPlanned
from outlast.protocol.reply import Discovery, GatewayRequest, Unsupported, to_op

#: the opcodes a checkpoint may carry (in lower case, as `to_op` matches them); `defer()`'s ride along
STEP_RESULTS = frozenset({"steprun", "step", "steperror", "stepfailed", "deferadd", "deferabort"})


class CheckpointBodyError(ValueError):
    """A checkpoint body that cannot be read; the message names the field."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointRequest:
    run_id: str
    dispatch: Lease
    ops: list[StepOp]


def dispatch_id(lease: Lease) -> str:
    """The `ctx.qi_id` of a call made under `lease`."""
    return f"{lease.item_id}.{lease.token}"


def parse_dispatch(qi_id: object) -> Lease | None:
    if not isinstance(qi_id, str) or qi_id.count(".") != 1:
        return None
    item_id, token = qi_id.split(".")
    return Lease(item_id=item_id, token=token) if item_id and token else None


def parse_checkpoint(body: Any, *, run_id: str, now_ms: int) -> CheckpointRequest:
    """The checkpoint posted for `run_id` (the path's); raises `CheckpointBodyError`."""
    if not isinstance(body, dict):
        raise CheckpointBodyError("expected a JSON object")
    if body.get("run_id") not in (None, run_id):
        raise CheckpointBodyError(f"run_id: {body.get('run_id')!r} is not the run in the path ({run_id!r})")
    lease = parse_dispatch(body.get("qi_id"))
    if lease is None:
        raise CheckpointBodyError(f"qi_id: expected the call's ctx.qi_id, got {body.get('qi_id')!r}")
    steps = body.get("steps")
    if not isinstance(steps, list) or not all(isinstance(s, dict) and isinstance(s.get("op"), str) for s in steps):
        raise CheckpointBodyError("steps: expected a list of opcodes (objects with an 'op')")
    ops: list[StepOp] = []
    for item in steps:
        op = to_op(item, now_ms=now_ms) if str(item["op"]).lower() in STEP_RESULTS else None
        # a sleep, a wait or an invoke ends the call, a plan or the run's end is its response
        if op is None or isinstance(op, StepPlanned | Discovery | Unsupported | RunComplete | GatewayRequest):
            raise CheckpointBodyError(f"steps: only step results can be checkpointed here, not {item['op']!r}")
        ops.append(op)
    return CheckpointRequest(run_id=run_id, dispatch=lease, ops=ops)


__all__ = ["CheckpointBodyError", "CheckpointRequest", "dispatch_id", "parse_checkpoint", "parse_dispatch"]
