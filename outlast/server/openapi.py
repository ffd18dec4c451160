"""The OpenAPI 3.1 description of the read API, served at `/api/openapi.json`."""

from __future__ import annotations

from typing import Any

from outlast.server.body import MAX_BODY_BYTES

_RUN_STATUS = {"type": "string", "enum": ["queued", "running", "completed", "failed", "cancelled", "skipped"]}
_ID = {"type": "string", "description": "a ULID"}


def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _op(
    summary: str,
    response: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": params or [],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": response}}},
            "400": {
                "description": "Bad input; the message names it",
                "content": {"application/json": {"schema": _ref("Error")}},
            },
            "401": {"description": "Not logged in (production mode)"},
        },
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        op["responses"]["413"] = {
            "description": f"The body is over the limit of {MAX_BODY_BYTES} bytes",
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    return op


_RUN_FILTERS = [
    _query("app", "only runs of this app"),
    _query("function", "only runs of this function (`fn` with `app`, or `app/fn`)"),
    _query("status", "only runs in this status", _RUN_STATUS),
    _query(
        "range",
        "created in the last 15m, 1h, 24h, 7d or 30d",
        {"type": "string", "enum": ["15m", "1h", "24h", "7d", "30d"]},
    ),
    _query("since", "created at or after (ms since the epoch, or local YYYY-MM-DDTHH:MM)"),
    _query("until", "created before (ms since the epoch, or local YYYY-MM-DDTHH:MM)"),
]


def openapi() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Outlast read API",
            "version": "1",
            "description": "Runs, events, functions, apps and workers of an Outlast server. In production "
            "mode send `Authorization: Bearer <dashboard password>`. Actions take JSON bodies.",
        },
        "paths": {**_run_paths(), **_run_action_paths(), **_event_paths(), **_function_paths(), **_app_paths()},
        "components": {"schemas": _schemas()},
    }


def _run_paths() -> dict[str, Any]:
    """Runs: list, detail, cancel, rerun."""
    return {
        "/api/runs": {
            "get": _op(
                "Runs, newest first, with a keyset cursor and counts per status",
                _obj(
                    runs={"type": "array", "items": _ref("Run")},
                    next_cursor={"type": ["string", "null"]},
                    counts=_ref("Counts"),
                    search={"type": "string", "enum": ["", "run", "event", "expression"]},
                    scanned={"type": "integer"},
                ),
                params=[
                    *_RUN_FILTERS,
                    _query("q", "a run id, an event id, or a CEL expression over `event`, `output`, `error`, `status`"),
                    _query("cursor", "`next_cursor` of the previous page"),
                    _query("limit", "page size, 1-500 (default 50)", {"type": "integer"}),
                    _query("counts", "0 to leave out the counts per status"),
                ],
            )
        },
        "/api/runs/{run_id}": {
            "get": _op(
                "A run with its steps, trigger events, log lines and links",
                _obj(
                    run=_ref("RunDetail"),
                    events={"type": "array", "items": _ref("Event")},
                    logs={
                        "type": "array",
                        "items": _obj(ts={"type": "integer"}, level={"type": "string"}, message={"type": "string"}),
                    },
                    links=_obj(
                        rerun_of={"type": ["string", "null"]},
                        rerun_from_step={"type": ["string", "null"]},
                        edited_output={"type": "boolean"},
                        reruns={"type": "array", "items": _ID},
                        children={
                            "type": "array",
                            "items": _obj(id=_ID, function_id={"type": "string"}, status=_RUN_STATUS),
                        },
                    ),
                ),
                params=[_path("run_id")],
            )
        },
    }


def _run_action_paths() -> dict[str, Any]:
    """Run actions: cancel, rerun."""
    return {
        "/api/runs/{run_id}/cancel": {
            "post": _op(
                "Cancel an active run", _obj(cancelled={"type": "boolean"}), params=[_path("run_id")], body=_obj()
            )
        },
        "/api/runs/{run_id}/rerun": {
            "post": _op(
                "Rerun an ended run: from the start, or from a step (the memo before it kept), optionally "
                "completing that step with an edited output",
                _obj(run_id=_ID, rerun_of=_ID),
                params=[_path("run_id")],
                body=_obj(
                    from_step={"type": "string", "description": "a step id or key"},
                    output={"description": "any JSON value: the step's new output"},
                ),
            )
        },
    }


def _event_paths() -> dict[str, Any]:
    """Events: list, send, detail."""
    return {
        "/api/events": {
            "get": _op(
                "Events, newest first, each with the runs it started, resumed or cancelled",
                _obj(events={"type": "array", "items": _ref("Event")}, next_cursor={"type": ["string", "null"]}),
                params=[
                    _query("name", "only events of this name"),
                    _query("cursor", "`next_cursor`"),
                    _query("system", "0 to leave out inngest/ system events"),
                ],
            ),
            "post": _op(
                "Send one event or a list",
                _obj(ids={"type": "array", "items": _ID}),
                body={"oneOf": [_ref("NewEvent"), {"type": "array", "items": _ref("NewEvent")}]},
            ),
        },
        "/api/events/{event_id}": {
            "get": _op("An event and what it did", _obj(event=_ref("Event")), params=[_path("event_id")])
        },
    }


def _function_paths() -> dict[str, Any]:
    """Functions, invoke and their numbers."""
    return {
        "/api/functions": {
            "get": _op(
                "Functions with their configuration and numbers",
                _obj(functions={"type": "array", "items": _ref("Function")}),
            )
        },
        "/api/functions/{app_id}/{function_id}": {
            "get": _op("One function", _ref("Function"), params=[_path("app_id"), _path("function_id")])
        },
        "/api/functions/{app_id}/{function_id}/invoke": {
            "post": _op(
                "Start a run with this data",
                _obj(event_id=_ID),
                params=[_path("app_id"), _path("function_id")],
                body=_obj(data={"type": "object"}),
            )
        },
        "/api/metrics": {
            "get": _op(
                "Per-function numbers for the last hour and day",
                _obj(functions={"type": "array", "items": _ref("Stats")}),
            )
        },
    }


def _app_paths() -> dict[str, Any]:
    """Apps, workers, bulk jobs and the live stream."""
    return {
        "/api/apps": {
            "get": _op("Synced apps", _obj(apps={"type": "array", "items": _ref("App")})),
            "post": _op(
                "Ask the app served at a URL to sync",
                _obj(ok={"type": "boolean"}, message={"type": "string"}),
                body=_obj(url={"type": "string"}),
            ),
        },
        "/api/apps/{app_id}/resync": {
            "post": _op(
                "Sync an app again from its URL", _obj(ok={"type": "boolean"}), params=[_path("app_id")], body=_obj()
            )
        },
        "/api/apps/{app_id}": {
            "delete": _op(
                "Forget an app and its functions (its runs are kept)",
                _obj(removed={"type": "string"}),
                params=[_path("app_id")],
            )
        },
        "/api/workers": {"get": _op("Live worker processes", _obj(workers={"type": "array", "items": _ref("Worker")}))},
        "/api/bulk": {
            "get": _op(
                "Bulk jobs of this server process, newest first", _obj(jobs={"type": "array", "items": _ref("Job")})
            ),
            "post": _op(
                "Replay the failed runs of a function, or cancel active runs matching a filter",
                _ref("Job"),
                body=_obj(
                    action={"type": "string", "enum": ["replay", "cancel"]},
                    app={"type": "string"},
                    function={"type": "string"},
                    status=_RUN_STATUS,
                    range={"type": "string"},
                    since={"type": "string"},
                    until={"type": "string"},
                ),
            ),
        },
        "/api/bulk/{job_id}": {"get": _op("A bulk job's progress", _ref("Job"), params=[_path("job_id")])},
        "/api/stream": {
            "get": {
                "summary": "Server-sent events: {kind: run|step|runs, run_id?, status?}",
                "parameters": [_query("run", "only messages about this run")],
                "responses": {"200": {"description": "text/event-stream"}},
            }
        },
    }


_ERROR = _obj(name={"type": "string"}, message={"type": "string"}, stack={"type": "string"})
_RUN = _obj(
    id=_ID,
    app_id={"type": "string"},
    function_id={"type": "string"},
    status=_RUN_STATUS,
    event_ids={"type": "array", "items": _ID},
    output={},
    error={"oneOf": [_ERROR, {"type": "null"}]},
    created_at={"type": "integer"},
    started_at={"type": ["integer", "null"]},
    ended_at={"type": ["integer", "null"]},
    parent_run_id={"type": ["string", "null"]},
    skip_reason={"type": ["string", "null"]},
)
_STEP = _obj(
    id={"type": "string"},
    key={"type": "string"},
    kind={"type": "string"},
    status={"type": "string"},
    attempts={"type": "integer"},
    output={},
    error={},
    started_at={"type": ["integer", "null"]},
    ended_at={"type": ["integer", "null"]},
    deadline={"type": ["integer", "null"]},
    detail={},
    failures={"type": "array", "items": _obj(attempt={"type": "integer"}, error=_ERROR)},
)
_WINDOW = _obj(
    since={"type": "integer"},
    runs={"type": "integer"},
    failures={"type": "integer"},
    p50_ms={"type": ["integer", "null"]},
    p95_ms={"type": ["integer", "null"]},
    sampled={"type": "integer"},
    bucket_ms={"type": "integer"},
    buckets={
        "type": "array",
        "items": _obj(
            start={"type": "integer"},
            completed={"type": "integer"},
            failed={"type": "integer"},
            other={"type": "integer"},
        ),
    },
)


def _schemas() -> dict[str, Any]:
    return {**_run_schemas(), **_other_schemas()}


def _run_schemas() -> dict[str, Any]:
    """Runs, their steps and counts, and events."""
    return {
        "Error": _obj(error={"type": "string"}),
        "Run": _RUN,
        "RunDetail": {"allOf": [_RUN, _obj(steps={"type": "array", "items": _STEP}, failures={"type": "array"})]},
        "Counts": _obj(
            counts={"type": "object", "additionalProperties": {"type": "integer"}},
            cap={"type": "integer", "description": "a count equal to cap means at least that many"},
        ),
        "Event": _obj(
            id=_ID,
            public_id={"type": "string"},
            name={"type": "string"},
            data={"type": "object"},
            user={"type": "object"},
            ts={"type": "integer"},
            received_at={"type": "integer"},
            effects={
                "type": "array",
                "items": _obj(
                    run_id=_ID, effect={"type": "string"}, function_id={"type": "string"}, status=_RUN_STATUS
                ),
            },
        ),
        "NewEvent": {
            **_obj(
                name={"type": "string"},
                data={"type": "object"},
                id={"type": "string"},
                user={"type": "object"},
                ts={"type": "integer"},
            ),
            "required": ["name"],
        },
    }


def _other_schemas() -> dict[str, Any]:
    """Functions and their numbers, apps, workers and bulk jobs."""
    return {
        "Stats": _obj(
            app_id={"type": "string"},
            function_id={"type": "string"},
            backlog={"type": "integer"},
            hour=_WINDOW,
            day=_WINDOW,
        ),
        "Function": _obj(
            app_id={"type": "string"},
            id={"type": "string"},
            slug={"type": "string"},
            name={"type": "string"},
            config={"type": "object"},
            stats=_ref("Stats"),
        ),
        "App": _obj(
            id={"type": "string"},
            url={"type": ["string", "null"]},
            sdk={"type": ["string", "null"]},
            error={"type": ["string", "null"]},
            synced_at={"type": ["integer", "null"]},
            functions={"type": "array", "items": {"type": "string"}},
        ),
        "Worker": _obj(
            id={"type": "string"},
            app_id={"type": "string"},
            host={"type": "string"},
            pid={"type": "integer"},
            started_at={"type": "integer"},
            heartbeat_at={"type": "integer"},
            functions={"type": "array", "items": {"type": "string"}},
            in_flight={"type": "integer"},
        ),
        "Job": _obj(
            id=_ID,
            action={"type": "string"},
            state={"type": "string", "enum": ["running", "done", "failed"]},
            total={"type": "integer"},
            done={"type": "integer"},
            failed={"type": "integer"},
            errors={"type": "array", "items": {"type": "string"}},
        ),
    }
