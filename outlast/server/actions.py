"""What the dashboard and the read API both do: cancel, rerun, send an event, invoke a function.

Each raises `ActionError` (an OutlastError with a message for the user) when it cannot be done;
nothing was changed then.
"""

from __future__ import annotations

from typing import Any

from outlast.core import jsonutil
from outlast.errors import OutlastError, StoreError
from outlast.runtime.engine import Engine
from outlast.runtime.invoke import invoke as start_invoke
from outlast.runtime.rerun import UNSET, rerun


class ActionError(OutlastError):
    pass


def parse_json(text: str, what: str) -> Any:
    try:
        return jsonutil.loads(text)
    except ValueError as exc:
        raise ActionError(f"{what}: not valid JSON: {exc}") from None


async def cancel(engine: Engine, run_id: str) -> None:
    if not await engine.cancel_run(run_id):
        raise ActionError(f"run {run_id} is not active (it has ended, or does not exist): nothing to cancel")


async def rerun_run(engine: Engine, run_id: str, *, from_step: str | None = None, output: Any = UNSET) -> str:
    return await rerun(engine, run_id, from_step=from_step, output=output)


async def send_event(engine: Engine, payload: Any, *, trace: dict[str, str] | None = None) -> list[str]:
    """`payload`: one event object or a list of them (`name`, `data`, optional `id`, `user`, `ts`).
    `trace`: the W3C trace context of the request that sends them."""
    return await engine.send(payload, trace=trace)


async def invoke(
    engine: Engine, app_id: str, function_id: str, data: Any, *, trace: dict[str, str] | None = None
) -> str:
    """Start a run of the function with `data` as its event's data (`runtime.invoke`)."""
    try:
        return await start_invoke(engine, app_id, function_id, data, trace=trace)
    except OutlastError as exc:
        if isinstance(exc, StoreError):
            raise
        raise ActionError(str(exc)) from None
