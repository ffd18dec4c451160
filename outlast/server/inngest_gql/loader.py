"""What one GraphQL request reads, each read made once (a query may name a run several times)."""

from __future__ import annotations

from outlast.core.config import FunctionConfig
from outlast.core.models import EventRecord, Run
from outlast.runtime.engine import Engine


class QueryError(Exception):
    """A resolver's answer to bad input or a missing record; its message reaches the client."""


class Loader:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._runs: dict[str, Run | None] = {}
        self._events: dict[str, EventRecord | None] = {}
        self._event_runs: dict[str, list[Run]] = {}
        self._children: dict[str, list[tuple[str, EventRecord]]] = {}

    def now_ms(self) -> int:
        return self.engine.clock.now_ms()

    async def run(self, run_id: str) -> Run | None:
        """The run with its steps and failure histories."""
        if run_id not in self._runs:
            self._runs[run_id] = await self.engine.reads.get_run(run_id)
        return self._runs[run_id]

    async def events(self, event_ids: list[str]) -> list[EventRecord]:
        """The known events among `event_ids`, in that order."""
        missing = [i for i in dict.fromkeys(event_ids) if i not in self._events]
        if missing:
            found = {e.id: e for e in await self.engine.reads.get_events(missing)}
            self._events.update({i: found.get(i) for i in missing})
        return [e for e in (self._events[i] for i in event_ids) if e is not None]

    async def event(self, event_id: str) -> EventRecord | None:
        found = await self.events([event_id])
        return found[0] if found else None

    def remember_events(self, events: list[EventRecord]) -> None:
        self._events.update({e.id: e for e in events})

    async def runs_of_events(self, event_ids: list[str]) -> dict[str, list[Run]]:
        """The runs each event started, oldest first (one read for all of them)."""
        missing = [i for i in dict.fromkeys(event_ids) if i not in self._event_runs]
        if missing:
            self._event_runs.update(await self.engine.reads.runs_for_events(missing))
        return {i: self._event_runs.get(i, []) for i in event_ids}

    async def children(self, run_id: str) -> list[tuple[str, EventRecord]]:
        if run_id not in self._children:
            self._children[run_id] = await self.engine.reads.child_runs(run_id)
        return self._children[run_id]

    def function(self, app_id: str, function_id: str) -> FunctionConfig | None:
        return self.engine.function(app_id, function_id)
