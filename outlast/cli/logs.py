"""Logging for the long-running commands: levels, text or JSON lines, and a line per run event.

Every line that concerns a run carries its run id, app, function, step and attempt (from the
executor's bound context, `outlast.core.logcontext`, or the record's own extras): appended as
`[run=… function=… step=… attempt=…]` in text, as fields in JSON. `log_observation` turns the
executor's observations into lines on the `outlast.runs` logger: a finished run or step at INFO,
a retry at WARNING, a failed run at ERROR, so the default level of production (warning) prints
only what needs attention.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from outlast.core.logcontext import FIELDS, RunContextFilter
from outlast.core.observe import AttemptEnded, AttemptStarted, EventsReceived, Observation, StepEnded

runs_log = logging.getLogger("outlast.runs")
#: attributes every LogRecord has; any other attribute is an `extra` worth printing
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def configure(*, level: str, fmt: str) -> None:
    """Send every logger's records at `level` and above to standard error, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RunContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO), level, logger, message, the run's fields, extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_extras(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time level logger: message [run=… function=… step=… attempt=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        about = " ".join(
            f"{name.removesuffix('_id')}={value}"
            for name, value in _extras(record).items()
            if name in FIELDS and name != "app_id"
        )
        if not about:
            return text
        first, newline, rest = text.partition("\n")  # keep a traceback below the bracket
        return f"{first} [{about}]{newline}{rest}"


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    fields = {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None}
    fields.update(
        {
            k: v
            for k, v in record.__dict__.items()
            if k not in _STANDARD and k not in fields and v is not None and not k.startswith("_")
        }
    )
    return fields


# -- run events as log lines -----------------------------------------------------------------------


def log_observation(o: Observation) -> None:
    """A log line for each run event (see the module docstring for the levels)."""
    if isinstance(o, EventsReceived):
        return
    about: dict[str, Any] = {"run_id": o.run_id, "app_id": o.app_id, "function_id": o.function_id, "attempt": o.attempt}
    if isinstance(o, AttemptStarted):
        if runs_log.isEnabledFor(logging.INFO):
            runs_log.info("run started" if o.first_start else "run resumed", extra=about)
    elif isinstance(o, StepEnded):
        level = logging.WARNING if o.status in ("retrying", "failed") else logging.INFO
        if runs_log.isEnabledFor(level):
            why = f": {_error(o.error)}" if o.error else ""
            runs_log.log(
                level,
                "step %s%s",
                o.status,
                why,
                extra={**about, "step_id": o.step_id, "kind": o.kind, "duration_ms": o.duration_ms},
            )
    elif isinstance(o, AttemptEnded):
        level = {"failed": logging.ERROR, "retrying": logging.WARNING, "lost": logging.WARNING}.get(
            o.outcome, logging.INFO
        )
        if runs_log.isEnabledFor(level):
            why = f": {_error(o.error)}" if o.error else ""
            what = {
                "lost": "attempt stopped: its lease was lost (the run was cancelled or another worker took it)",
                "retrying": "attempt failed, the run will retry",
                "suspended": "run suspended",
            }.get(o.outcome, f"run {o.outcome}")
            runs_log.log(
                level,
                "%s%s",
                what,
                why,
                extra={
                    **about,
                    "outcome": o.outcome,
                    "duration_ms": o.duration_ms,
                    "run_duration_ms": o.run_duration_ms,
                },
            )


def _error(error: dict[str, Any]) -> str:
    return f"{error.get('name', 'Error')}: {error.get('message', '')}"
