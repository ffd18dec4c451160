"""All tunables in one object. With the CLI, the only place that reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from outlast.errors import OutlastError

DEFAULT_DATABASE_URL = "sqlite:///.outlast/outlast.db"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    #: how long a claimed item stays leased without a heartbeat before another worker may take it
    lease_ms: int = 30_000
    #: how often an idle worker looks for work another process made due (SQLite has no notify)
    poll_interval_ms: int = 100
    #: items one worker process executes at once
    worker_concurrency: int = 200
    #: threads for plain-`def` step bodies and handlers
    sync_threads: int = 32
    max_event_bytes: int = 512 * 1024
    max_step_output_bytes: int = 4 * 1024 * 1024
    max_steps_per_run: int = 1000
    #: multiplies retry backoff delays; `outlast dev` shortens them
    backoff_scale: float = 1.0
    #: how often a worker re-reads function configurations another process may have synced
    refresh_functions_ms: int = 2_000

    # -- operations ------------------------------------------------------------------------------
    #: ms a finished run (with its steps) and an unreferenced event are kept; 0 keeps everything.
    #: `OUTLAST_RETENTION` takes a duration ("7d", "12h"; a bare number must be 0)
    retention: int = 7 * 86_400_000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `OUTLAST_<FIELD>` variables, then explicit overrides."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"OUTLAST_{f.name.upper()}")
            if raw is not None and f.name in DURATION_FIELDS:
                values[f.name] = _duration(f.name, raw)
            elif raw is not None:
                values[f.name] = _convert(f.name, raw, type(getattr(cls(), f.name)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)


class SettingError(OutlastError, ValueError):
    """An OUTLAST_* variable holds a value that cannot be used; the message names it."""


#: fields whose variable is a duration with a unit
DURATION_FIELDS = ("retention",)


def _duration(name: str, raw: str) -> int:
    from outlast.core.durations import to_ms

    text = raw.strip()
    if text.isdigit() and int(text) == 0:
        return 0
    if text.isdigit():
        raise SettingError(f"OUTLAST_{name.upper()}: give a unit, e.g. '7d', '12h' or '30m' (0 keeps everything), "
                         f"got {raw!r}")
    try:
        return to_ms(text, what=f"OUTLAST_{name.upper()}")
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise SettingError(f"OUTLAST_{name.upper()}: expected {kind.__name__}, got {raw!r}") from None
