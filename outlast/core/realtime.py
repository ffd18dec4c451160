"""Realtime messages: what a run publishes on a channel, and the names and limits they obey.

A message is a row with an id that increases in commit order within one store, so a subscriber
resumes from the last id it saw (`since`). Every run also has its own channel, `run:<run_id>`,
on which the store itself writes topic `status` at each status change and topic `step` as each
step ends (see migration 11), in the transactions that make those changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_CHANNEL_CHARS = 256
MAX_TOPIC_CHARS = 256
RUN_CHANNEL_PREFIX = "run:"
#: topics the store writes on a run's own channel
STATUS_TOPIC = "status"
STEP_TOPIC = "step"
#: the default `OUTLAST_REALTIME_RETENTION`: one hour
DEFAULT_REALTIME_RETENTION_MS = 3_600_000


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    """A message to publish (the store gives it its id)."""

    channel: str
    topic: str
    data: Any
    ts: int
    run_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A published message, as subscribers receive it."""

    id: int
    channel: str
    topic: str
    data: Any
    run_id: str | None
    ts: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "topic": self.topic,
            "data": self.data,
            "run_id": self.run_id,
            "ts": self.ts,
        }


def run_channel(run_id: str) -> str:
    return RUN_CHANNEL_PREFIX + run_id


def name_problem(value: Any, *, what: str, limit: int) -> str | None:
    """Why `value` cannot be a channel or topic name, or None."""
    if not isinstance(value, str):
        return f"{what} must be a string, got {type(value).__name__}"
    if not value:
        return f"{what} must not be empty"
    if len(value) > limit:
        return f"{what} is {len(value)} characters long, the limit is {limit}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"{what} is not valid Unicode text (a lone surrogate at offset {exc.start})"
    for offset, char in enumerate(value):
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            return f"{what} must not contain control characters (found {char!r} at offset {offset})"
    return None


def channel_problem(channel: Any) -> str | None:
    return name_problem(channel, what="channel", limit=MAX_CHANNEL_CHARS)


def topic_problem(topic: Any) -> str | None:
    return name_problem(topic, what="topic", limit=MAX_TOPIC_CHARS)


def topics_problem(topics: Any) -> str | None:
    """Why `topics` (a subscriber's filter: None for all) is not a list of topic names, or None."""
    if topics is None:
        return None
    if isinstance(topics, str) or not isinstance(topics, (list, tuple, set, frozenset)):
        return f"topics must be a list of strings, got {type(topics).__name__}"
    for topic in topics:
        if (problem := topic_problem(topic)) is not None:
            return problem
    return None
