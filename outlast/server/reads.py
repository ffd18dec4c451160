"""What the dashboard and the read API both read: run listings with filters and search, a run with
everything around it, functions with their numbers, events with what they did.

Query parameters are parsed here once; a bad one raises `BadQueryError` naming it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from outlast.core.config import FunctionConfig
from outlast.core.expressions import ExpressionError, compile_expression
from outlast.core.models import EventEffect, EventFilter, EventRecord, LogLine, Run, RunFilter, SyncedApp
from outlast.core.views import FunctionStats, RerunLinks, StatusCounts
from outlast.runtime.engine import Engine

STATUSES = ("queued", "running", "completed", "failed", "cancelled", "skipped")
RANGES = {"15m": 15 * 60_000, "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000}
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: counts per status stop here ("10,000+"): each is an index range scan of at most this many entries
COUNT_CAP = 10_000
#: an expression search looks at most this many runs per request, then offers to go on
SEARCH_SCAN = 5_000
_SEARCH_BATCH = 500
#: the last millisecond of year 9999 (UTC, less a day so any local time zone can show it)
LATEST_MS = 253_402_300_799_999 - 86_400_000
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")


class BadQueryError(ValueError):
    """A query parameter is invalid; the message names it."""


@dataclass(slots=True, kw_only=True)
class RunQuery:
    app_id: str | None = None
    function_id: str | None = None
    status: str | None = None
    range: str | None = None
    since: int | None = None
    until: int | None = None
    q: str = ""
    cursor: str | None = None
    limit: int = PAGE_SIZE

    def filter(self, *, before: str | None = None, limit: int | None = None, event_id: str | None = None) -> RunFilter:
        return RunFilter(
            app_id=self.app_id,
            function_id=self.function_id,
            status=self.status,
            since=self.since,
            until=self.until,
            before=before if before is not None else self.cursor,
            limit=limit or self.limit,
            event_id=event_id,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """This query as URL parameters (for links: next page, filters kept)."""
        values = {
            "app": self.app_id,
            "function": self.function_id,
            "status": self.status,
            "range": self.range,
            "q": self.q or None,
            "cursor": self.cursor,
        }
        if self.range == "custom":
            values["since"] = _format_local(self.since)
            values["until"] = _format_local(self.until)
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


def parse_run_query(params: Any, now: int) -> RunQuery:
    """From URL parameters: app, function (`fn` or `app/fn`), status, range (15m…30d, custom with
    since/until as local `YYYY-MM-DDTHH:MM`), q (run id, event id or expression), cursor, limit."""
    query = RunQuery(
        app_id=params.get("app") or None, q=(params.get("q") or "").strip(), cursor=params.get("cursor") or None
    )
    function = params.get("function") or None
    if function and "/" in function:
        query.app_id, _, function = function.partition("/")
    query.function_id = function
    status = params.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadQueryError(f"status: expected one of {', '.join(STATUSES)}, got {status!r}")
    query.status = status
    window = params.get("range") or None
    if window in RANGES:
        query.range, query.since = window, now - RANGES[window]
    elif window == "custom" or params.get("since") or params.get("until"):
        query.range = "custom"
        query.since = _parse_time("since", params.get("since"))
        query.until = _parse_time("until", params.get("until"))
    elif window is not None:
        raise BadQueryError(f"range: expected one of {', '.join(RANGES)} or custom, got {window!r}")
    if query.cursor is not None and not _ULID.match(query.cursor):
        raise BadQueryError(f"cursor: not a run id: {query.cursor!r}")
    limit = params.get("limit")
    if limit:
        if not str(limit).isdigit() or not 1 <= int(limit) <= MAX_PAGE_SIZE:
            raise BadQueryError(f"limit: expected a number from 1 to {MAX_PAGE_SIZE}, got {limit!r}")
        query.limit = int(limit)
    return query


def _parse_time(name: str, raw: str | None) -> int | None:
    """Milliseconds since the epoch, within what a page can show again (years 1970 to 9999)."""
    if not raw:
        return None
    try:
        ms = int(raw) if raw.isdigit() else int(datetime.fromisoformat(raw).timestamp() * 1000)
    except (ValueError, OverflowError):
        raise BadQueryError(f"{name}: expected a time like 2025-01-31T14:30 or milliseconds, got {raw!r}") from None
    if not 0 <= ms <= LATEST_MS:
        raise BadQueryError(f"{name}: expected a time from 1970-01-01 to 9999-12-30, got {raw!r}")
    return ms


def _format_local(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%dT%H:%M")


@dataclass(slots=True, kw_only=True)
class RunsPage:
    runs: list[Run]
    next_cursor: str | None
    counts: StatusCounts | None = None
    #: what the search box was taken as: "" (none), "run", "event" or "expression"
    search: str = ""
    #: an expression search: how many runs were looked at, and where to go on from
    scanned: int = 0
    error: str | None = None


async def runs_page(engine: Engine, query: RunQuery, *, counts: bool = True) -> RunsPage:
    reads = engine.reads
    if not query.q:
        runs = await reads.list_runs(query.filter(limit=query.limit + 1))
        page = RunsPage(
            runs=runs[: query.limit], next_cursor=runs[query.limit - 1].id if len(runs) > query.limit else None
        )
    elif _ULID.match(query.q):
        page = await _by_id(engine, query)
    else:
        page = await _search(engine, query)
    if counts and page.error is None:
        event_id = query.q.upper() if page.search == "event" else None
        page.counts = await reads.count_runs(query.filter(event_id=event_id), COUNT_CAP)
    return page


async def _by_id(engine: Engine, query: RunQuery) -> RunsPage:
    """A run id finds that run; an event id finds the runs the event started."""
    wanted = query.q.upper()
    run = await engine.reads.get_run(wanted)
    if run is not None:
        run.steps = []
        return RunsPage(runs=[run], next_cursor=None, search="run")
    runs = await engine.reads.list_runs(query.filter(limit=query.limit + 1, event_id=wanted))
    return RunsPage(
        runs=runs[: query.limit],
        next_cursor=runs[query.limit - 1].id if len(runs) > query.limit else None,
        search="event",
    )


#: what a search expression may name: the run's first trigger event and its outcome
SEARCH_VARIABLES = ("event", "output", "error", "status")


async def _search(engine: Engine, query: RunQuery) -> RunsPage:
    """Runs whose trigger event and output match a CEL expression (`event`, `output`, `error`,
    `status`), newest first, looking at no more than SEARCH_SCAN runs per request."""
    try:
        expression = compile_expression(query.q, variables=SEARCH_VARIABLES, result="bool")
    except ExpressionError as exc:
        return RunsPage(runs=[], next_cursor=None, search="expression", error=str(exc))
    found: list[Run] = []
    scanned, cursor, more = 0, query.cursor, True
    while more and scanned < SEARCH_SCAN and len(found) < query.limit:
        batch = await engine.reads.runs_with_triggers(query.filter(before=cursor, limit=_SEARCH_BATCH))
        more = len(batch) == _SEARCH_BATCH
        for run, event in batch:
            scanned += 1
            cursor = run.id
            variables = {
                "event": event.to_dict() if event else {},
                "output": run.output,
                "error": run.error,
                "status": run.status,
            }
            if expression.matches(variables):
                found.append(run)
                if len(found) == query.limit:
                    more = more or run is not batch[-1][0]
                    break
    return RunsPage(runs=found, next_cursor=cursor if more else None, search="expression", scanned=scanned)


@dataclass(slots=True, kw_only=True)
class RunDetail:
    run: Run
    events: list[EventRecord]
    logs: list[LogLine]
    links: RerunLinks
    function: FunctionConfig | None


async def run_detail(engine: Engine, run_id: str) -> RunDetail | None:
    reads = engine.reads
    run = await reads.get_run(run_id)
    if run is None:
        return None
    events = await reads.get_events(run.event_ids)
    return RunDetail(
        run=run,
        events=events,
        logs=await reads.run_logs(run_id),
        links=await reads.run_links(run_id),
        function=engine.function(run.app_id, run.function_id),
    )


@dataclass(slots=True, kw_only=True)
class FunctionView:
    config: FunctionConfig
    stats: FunctionStats
    paused: bool = False


async def functions_overview(engine: Engine) -> list[FunctionView]:
    await engine.refresh_registry()
    configs = [f.config for f in sorted(engine.registry.functions.values(), key=lambda f: (f.app_id, f.id))]
    stats = await engine.reads.function_stats(engine.clock.now_ms(), [(c.app_id, c.id) for c in configs])
    paused = set(await engine.store.paused_functions())
    return [
        FunctionView(config=c, stats=s, paused=(c.app_id, c.id) in paused) for c, s in zip(configs, stats, strict=True)
    ]


@dataclass(slots=True, kw_only=True)
class EventsPage:
    events: list[EventRecord]
    next_cursor: str | None
    name: str | None = None
    system: bool = False
    effects: dict[str, list[EventEffect]] = field(default_factory=dict)


async def events_page(engine: Engine, params: Any) -> EventsPage:
    name = params.get("name") or None
    cursor = params.get("cursor") or None
    if cursor is not None and not _ULID.match(cursor):
        raise BadQueryError(f"cursor: not an event id: {cursor!r}")
    system = bool(name) or params.get("system", "0") not in ("0", "false", "")
    events = await engine.reads.list_events(EventFilter(name=name, before=cursor, system=system, limit=PAGE_SIZE + 1))
    page = EventsPage(
        events=events[:PAGE_SIZE],
        name=name,
        system=system,
        next_cursor=events[PAGE_SIZE - 1].id if len(events) > PAGE_SIZE else None,
    )
    for event in page.events:
        page.effects[event.id] = await engine.reads.event_effects(event.id)
    return page


async def apps_overview(engine: Engine) -> list[SyncedApp]:
    """Every app the store knows, by id: synced apps (with URL, SDK and last sync) and local apps
    (their functions served by workers; no URL)."""
    synced = {a.id: a for a in await engine.reads.list_apps()}
    await engine.refresh_registry()
    for app_id, functions in engine.registry.apps().items():
        if app_id not in synced:
            synced[app_id] = SyncedApp(id=app_id, url=None, functions=sorted(f.id for f in functions))
    return [synced[k] for k in sorted(synced)]
