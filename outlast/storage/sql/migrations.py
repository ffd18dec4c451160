"""Versioned schema migrations. Each entry is applied once, in order, in one transaction.

Types are chosen to mean the same on SQLite and PostgreSQL: times are BIGINT milliseconds
since the epoch; JSON values are TEXT.
"""

from __future__ import annotations

import functools
import re

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
CREATE TABLE functions (
    app_id TEXT NOT NULL,
    function_id TEXT NOT NULL,
    config TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, function_id)
);
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('functions_version', 0);
CREATE TABLE events (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    user_data TEXT NOT NULL,
    ts BIGINT NOT NULL,
    dedupe_id TEXT,
    received_at BIGINT NOT NULL
);
CREATE INDEX events_by_name ON events (name, received_at);
CREATE TABLE dedupe (
    key TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dedupe_expiry ON dedupe (expires_at);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    function_id TEXT NOT NULL,
    status TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    first_event_id TEXT NOT NULL,
    output TEXT,
    error TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    parent_run_id TEXT,
    skip_reason TEXT,
    finish_timeout_ms BIGINT,
    singleton_key TEXT,
    has_waits INTEGER NOT NULL DEFAULT 0,
    has_timeouts INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX runs_one_active_singleton ON runs (singleton_key)
    WHERE singleton_key IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX runs_by_function ON runs (app_id, function_id, id);
CREATE INDEX runs_by_status ON runs (status, id);
CREATE INDEX runs_by_event ON runs (first_event_id);
CREATE TABLE steps (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    step_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    output TEXT,
    error TEXT,
    started_at BIGINT,
    ended_at BIGINT,
    deadline BIGINT,
    timeout_output TEXT,
    seq BIGINT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE queue (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_id TEXT,
    due_at BIGINT NOT NULL,
    lease_token TEXT,
    owner TEXT,
    woken INTEGER NOT NULL DEFAULT 0,
    pending INTEGER NOT NULL DEFAULT 0,
    payload TEXT,
    ck1 TEXT,
    ck1_limit INTEGER,
    ck2 TEXT,
    ck2_limit INTEGER
);
CREATE INDEX queue_due ON queue (app_id, due_at);
CREATE INDEX queue_leased ON queue (lease_token, due_at) WHERE lease_token IS NOT NULL;
CREATE INDEX queue_by_run ON queue (run_id);
CREATE TABLE waits (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step_key TEXT,
    event_name TEXT NOT NULL,
    match_field TEXT,
    match_value TEXT,
    expression TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX waits_by_value ON waits (event_name, match_field, match_value);
CREATE INDEX waits_by_run ON waits (run_id);
CREATE TABLE gcra (
    key TEXT PRIMARY KEY,
    tat BIGINT NOT NULL
);
CREATE TABLE gathering (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    first_at BIGINT NOT NULL
);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
CREATE TABLE wait_fields (
    event_name TEXT NOT NULL,
    match_field TEXT NOT NULL,
    PRIMARY KEY (event_name, match_field)
);
""",
    ),
    (
        2,
        """
ALTER TABLE queue ADD COLUMN function_id TEXT;
UPDATE queue SET function_id = (SELECT runs.function_id FROM runs WHERE runs.id = queue.run_id)
    WHERE run_id IS NOT NULL;
DROP INDEX queue_due;
CREATE INDEX queue_due ON queue (app_id, due_at, id);
ALTER TABLE functions ADD COLUMN last_seen_at BIGINT;
UPDATE functions SET last_seen_at = updated_at;
ALTER TABLE workers ADD COLUMN functions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workers ADD COLUMN last_error TEXT;
ALTER TABLE steps ADD COLUMN detail TEXT;
CREATE TABLE step_failures (
    run_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    error TEXT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    PRIMARY KEY (run_id, step_key, attempt)
);
CREATE TABLE run_logs (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    step_id TEXT,
    PRIMARY KEY (run_id, seq)
);
ALTER TABLE runs ADD COLUMN log_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
CREATE TABLE event_effects (
    event_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    effect TEXT NOT NULL,
    PRIMARY KEY (event_id, run_id, effect)
);
CREATE INDEX event_effects_by_run ON event_effects (run_id);
ALTER TABLE events ADD COLUMN trace TEXT;
CREATE TABLE apps (
    id TEXT PRIMARY KEY,
    url TEXT,
    sdk TEXT,
    framework TEXT,
    checksum TEXT,
    error TEXT,
    created_at BIGINT NOT NULL,
    synced_at BIGINT
);
""",
    ),
    (
        3,
        """
CREATE INDEX runs_by_app ON runs (app_id, id);
CREATE INDEX events_by_name_id ON events (name, id);
""",
    ),
    # -- 4: storage (crash counting and the quarantine of suspect runs) --
    (
        4,
        """
ALTER TABLE queue ADD COLUMN abandoned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue ADD COLUMN crash_progress BIGINT;
CREATE INDEX queue_suspects ON queue (due_at) WHERE crashes >= 2;
""",
    ),
    # -- 7: dashboard (reruns and the indexes its listings and counts use) --
    (
        7,
        """
CREATE INDEX runs_by_function_status ON runs (app_id, function_id, status, id);
CREATE TABLE reruns (
    run_id TEXT PRIMARY KEY,
    origin_run_id TEXT NOT NULL,
    from_step_key TEXT,
    edited INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX reruns_by_origin ON reruns (origin_run_id);
""",
    ),
    # -- 9 (operations): the retention lease, finished runs by end time, lean PostgreSQL tables ------
    (
        9,
        """
CREATE TABLE chores (
    name TEXT PRIMARY KEY,
    owner TEXT,
    lease_until BIGINT NOT NULL DEFAULT 0,
    cursor TEXT NOT NULL DEFAULT ''
);
INSERT INTO chores (name) VALUES ('retention');
CREATE INDEX runs_by_end ON runs (ended_at) WHERE ended_at IS NOT NULL;
""",
    ),
    # -- 10 (performance): events by name are read in id order (events_by_name_id); no query orders
    # or filters them by received_at, so that index only cost every ingest a write ---------------
    (
        10,
        """
DROP INDEX events_by_name;
""",
    ),
    # -- 11 (coordination): signal names waited on (one run per name), signals held for a wait, the
    # fields lookback waits match on and the values of events' fields there, and paused functions -----
    (
        11,
        """
CREATE TABLE signal_waits (
    signal TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_key TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX signal_waits_by_run ON signal_waits (run_id);
CREATE TABLE held_signals (
    id TEXT PRIMARY KEY,
    signal TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX held_signals_by_name ON held_signals (signal, id);
CREATE INDEX held_signals_by_expiry ON held_signals (expires_at);
CREATE TABLE lookback_fields (
    event_name TEXT NOT NULL,
    field TEXT NOT NULL,
    PRIMARY KEY (event_name, field)
);
CREATE TABLE event_values (
    event_name TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (event_name, field, value, event_id)
);
CREATE INDEX event_values_by_event ON event_values (event_id);
CREATE TABLE paused_functions (
    app_id TEXT NOT NULL,
    function_id TEXT NOT NULL,
    paused_at BIGINT NOT NULL,
    PRIMARY KEY (app_id, function_id)
);
""",
    ),
]

#: statements only PostgreSQL runs, in the same transaction as the shared script of their version
POSTGRES_ONLY: dict[int, str] = {
    # Storage parameters (no SQLite equivalent). The queue is rewritten by every claim, lease
    # extension and commit: vacuum it after a fixed number of dead rows, not a fraction of its
    # (small) size, and leave room in each page for updated rows. Retention's deletes are
    # vacuumed by the ordinary autovacuum settings.
    9: """
ALTER TABLE queue SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
    autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 2000,
    autovacuum_analyze_scale_factor = 0.02, autovacuum_vacuum_cost_delay = 0);
ALTER TABLE workers SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 200);
ALTER TABLE chores SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 100);
ALTER TABLE meta SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 200)
""",
}


def migrations_for(backend: str) -> list[tuple[int, str]]:
    """The migrations as `backend` ("sqlite" or "postgresql") applies them."""
    extra = POSTGRES_ONLY if backend == "postgresql" else {}
    return [(version, script + (";" + extra[version] if version in extra else "")) for version, script in MIGRATIONS]


@functools.cache
def tables() -> tuple[str, ...]:
    """The tables the migrations create (upkeep analyzes these, and no one else's)."""
    return tuple(sorted({name for _, script in MIGRATIONS for name in re.findall(r"CREATE TABLE (\w+)", script)}))
