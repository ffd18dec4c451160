"""All tunables in one object. With the CLI, the only place that reads the environment.

Settings are checked when they are made: each bad value (from an `OUTLAST_*` variable, a flag
or code) is named in one `SettingsError` that lists them all, so a misconfigured process says
everything that is wrong at once and starts nothing.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, fields, replace
from typing import Any

from outlast.errors import OutlastError

DEFAULT_DATABASE_URL = "sqlite:///.outlast/outlast.db"
DATABASE_SCHEMES = ("memory://", "sqlite:///path.db", "postgresql://user@host/db")
MIB = 1024 * 1024


class SettingsError(OutlastError, ValueError):
    """One or more settings are invalid; `problems` has one line per setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid setting: {problems[0]}")
        else:
            super().__init__(f"{len(problems)} invalid settings:\n" + "\n".join(f"  {p}" for p in problems))


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
    #: a run whose attempts stop their worker process (killed, os._exit, out of memory) this many
    #: times in a row without progress is failed instead of claimed again; 0 never fails it
    max_crashed_attempts: int = 3
    #: how long a call to a served app (official Inngest SDK) may take before it counts as failed
    http_request_timeout_ms: int = 900_000
    #: ms a finished run (with its steps) and an unreferenced event are kept; 0 keeps everything.
    #: `OUTLAST_RETENTION` takes a duration ("7d", "12h"; a bare number must be 0)
    retention: int = 7 * 86_400_000
    #: `/ready` reports not ready when the disk holding a SQLite database has less free space
    #: than this (MiB; 0 turns the check off)
    min_free_disk_mb: int = 64
    #: PostgreSQL connections a process keeps for its reads and writes (each has a thread); a
    #: process also opens one for LISTEN (when it runs workers) and one for upkeep (pruning)
    postgres_pool_size: int = 4
    #: ms a realtime message is kept for subscribers resuming with `since`; 0 keeps every message.
    #: `OUTLAST_REALTIME_RETENTION` takes a duration ("1h", "10m")
    realtime_retention: int = 3_600_000
    #: ms a plain step result of a local function may wait in memory for its attempt's next commit
    #: while later step bodies run (so a run whose steps finish at once is stored in one commit
    #: with its end). 0, the default: a result waits only until the next step body is about to
    #: start, or rides with the attempt's next commit if that comes first (a sleep, a wait, an
    #: event sent, the run's end), so it is stored before any later step body runs. Above 0, if
    #: the process dies within that window, the steps run since the last commit run again, each
    #: recomputed, even though a later step's body already ran with the earlier result: only for
    #: steps that tolerate that
    step_commit_delay_ms: int = 0

    def __post_init__(self) -> None:
        """Numbers are range-checked here, whoever makes the settings; the database URL is checked
        where users give it (`from_env`), and by the store that opens it."""
        problems = [
            f"{f.name}: {p}"
            for f in fields(self)
            if f.name != "database_url" and (p := _problem(f.name, getattr(self, f.name)))
        ]
        if problems:
            raise SettingsError(problems)

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, *, defaults: dict[str, Any] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults (the class's, then a mode's `defaults`, such as `outlast dev`'s shorter
        backoff), then `OUTLAST_<FIELD>` variables, then explicit overrides (None: not given).
        Raises SettingsError naming every bad value, by its variable or option name."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        problems: list[str] = []
        try:
            defaults_ = replace(cls(), **(defaults or {}))
        except SettingsError as exc:
            problems += exc.problems
            defaults_ = cls()
        for f in fields(cls):
            var = f"OUTLAST_{f.name.upper()}"
            raw = env.get(var)
            if raw is None:
                continue
            try:
                values[f.name] = (
                    _duration(raw) if f.name in DURATION_FIELDS else _convert(raw, type(getattr(defaults_, f.name)))
                )
            except ValueError as exc:
                problems.append(f"{var}: {exc}")
                continue
            if (problem := _problem(f.name, values[f.name])) is not None:
                problems.append(f"{var}: {problem}")
        for name, value in overrides.items():
            if value is None:
                continue
            values[name] = value
            if (problem := _problem(name, value)) is not None:
                problems.append(f"{name}: {problem}")
        if problems:
            raise SettingsError(problems)
        return replace(defaults_, **values)


# -- checks --------------------------------------------------------------------------------------

#: (least, most) for each numeric setting; a field with no entry is not range-checked
LIMITS: dict[str, tuple[float, float]] = {
    "lease_ms": (100, 86_400_000),
    "poll_interval_ms": (1, 60_000),
    "worker_concurrency": (1, 100_000),
    "sync_threads": (1, 1_000),
    "max_event_bytes": (1, 16 * MIB),
    "max_step_output_bytes": (1, 256 * MIB),
    "max_steps_per_run": (1, 100_000),
    "backoff_scale": (0, 1_000),
    "refresh_functions_ms": (10, 3_600_000),
    "min_free_disk_mb": (0, 1_000_000_000),
    "postgres_pool_size": (1, 100),
    "step_commit_delay_ms": (0, 60_000),
}


#: the settings that may be fractional
FRACTIONAL = frozenset({"backoff_scale"})
#: the settings whose variable is a duration with a unit ("7d", "12h"; a bare number must be 0)
DURATION_FIELDS = frozenset({"retention", "realtime_retention"})


def _duration(raw: str) -> int:
    from outlast.core.durations import to_ms

    text = raw.strip()
    if text.isdigit() and int(text) == 0:
        return 0
    if text.isdigit():
        raise ValueError(f"give a unit, e.g. '7d', '12h' or '30m' (0 keeps everything), got {raw!r}")
    return to_ms(text, what="duration")


def _convert(raw: str, kind: type) -> Any:
    text = raw.strip()
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {raw!r}") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {raw!r}") from None
    return raw


def _problem(name: str, value: Any) -> str | None:
    """Why `value` cannot be setting `name`, or None."""
    if name == "database_url":
        return database_url_problem(value)
    if name not in LIMITS:
        return None
    least, most = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"expected a number, got {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"expected a finite number, got {value!r}"
    if isinstance(value, float) and name not in FRACTIONAL and not value.is_integer():
        return f"expected a whole number, got {value!r}"
    if not least <= value <= most:
        return f"must be from {least:,.0f} to {most:,.0f}, got {value!r}"
    return None


def database_url_problem(url: Any) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return f"expected a database URL ({', '.join(DATABASE_SCHEMES)}), got {url!r}"
    if not url.startswith(("memory:", "sqlite:", "postgresql:", "postgres:")):
        scheme = url.split(":", 1)[0] if ":" in url else url
        return f"unsupported database {redact(url)!r} (scheme {scheme!r}); use {', '.join(DATABASE_SCHEMES)}"
    return None


def redact(url: str) -> str:
    """A URL without its password, for messages and logs."""
    return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", url)
