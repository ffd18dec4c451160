"""What one GraphQL request reads, each read made once (a query may name a run several times)."""

from __future__ import annotations

from outlast.core.config import FunctionConfig
from outlast.core.models import EventRecord, Run
from outlast.runtime.engine import Engine
from outlast.server.inngest_gql import limits


class QueryError(Exception):
    """A resolver's answer to bad input or a missing record; its message reaches the client."""


class Loader:
    def __init__(self, engine: Engine, *, max_rows: int | None = None) -> None:
        self.engine = engine
        #: store rows read so far (runs, steps, events); past `max_rows` the request is refused
        self.rows = 0
        self.max_rows = limits.MAX_ROWS if max_rows is None else max_rows
        self._runs: dict[str, Run | None] = {}
        self._events: dict[str, EventRecord | None] = {}
        self._event_runs: dict[str, list[Run]] = {}
        self._children: dict[str, list[tuple[str, EventRecord]]] = {}

    def _count(self, rows: int) -> None:
        self.rows += rows
        if self.rows > self.max_rows:
            raise QueryError(
                f"the query reads more than {self.max_rows} rows (runs, steps and events); ask for fewer fields"
            )

    def now_ms(self) -> int:
        return self.engine.clock.now_ms()

    async def run(self, run_id: str) -> Run | None:
        """The run with its steps and failure histories."""
        if run_id not in self._runs:
            found = self._runs[run_id] = await self.engine.reads.get_run(run_id)
            self._count(1 + len(found.steps) if found is not None else 0)
        return self._runs[run_id]

    async def events(self, event_ids: list[str]) -> list[EventRecord]:
        """The known events among `event_ids`, in that order."""
        missing = [i for i in dict.fromkeys(event_ids) if i not in self._events]
        if missing:
            found = {e.id: e for e in await self.engine.reads.get_events(missing)}
            self._count(len(found))
            self._events.update({i: found.get(i) for i in missing})
        return [e for e in (self._events[i] for i in event_ids) if e is not None]

    async def event(self, event_id: str) -> EventRecord | None:
        found = await self.events([event_id])
        return found[0] if found else None

    def remember_events(self, events: list[EventRecord]) -> None:
        """Events a resolver listed itself (counted as read)."""
        self._count(len(events))
        self._events.update({e.id: e for e in events})

    async def runs_of_events(self, event_ids: list[str]) -> dict[str, list[Run]]:
        """The runs each event started, oldest first (one read for all of them)."""
        missing = [i for i in dict.fromkeys(event_ids) if i not in self._event_runs]
        if missing:
            found = await self.engine.reads.runs_for_events(missing)
            self._count(sum(len(runs) for runs in found.values()))
            self._event_runs.update(found)
        return {i: self._event_runs.get(i, []) for i in event_ids}

    async def children(self, run_id: str) -> list[tuple[str, EventRecord]]:
        if run_id not in self._children:
            self._children[run_id] = await self.engine.reads.child_runs(run_id)
            self._count(len(self._children[run_id]))
        return self._children[run_id]

    def function(self, app_id: str, function_id: str) -> FunctionConfig | None:
        return self.engine.function(app_id, function_id)
