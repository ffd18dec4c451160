"""The driver for runs of a function nobody serves any more: it fails them, saying so."""

from __future__ import annotations

from outlast.core.config import FunctionConfig
from outlast.core.ops import FunctionError, Outcome
from outlast.core.retry import ErrorInfo
from outlast.runtime.drivers.base import AttemptHost


class MissingFunction:
    async def execute(self, host: AttemptHost) -> Outcome:
        run = host.run
        return FunctionError(
            error=ErrorInfo(
                name="FunctionNotFoundError",
                no_retry=True,
                message=(
                    f"function {run.function_id!r} of app {run.app_id!r} is not served by any live worker or "
                    "synced app any more"
                ),
            )
        )


def missing_config(app_id: str, function_id: str) -> FunctionConfig:
    """A stand-in configuration for a function the store no longer knows (no retries)."""
    return FunctionConfig(app_id=app_id, id=function_id, name=function_id, triggers=(), retries=0)
