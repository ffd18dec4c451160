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
    # -- 11 (hardening): functions stored by a process that serves nothing (a sender, before any
    # worker served the app) are provisional: the first worker that serves the app replaces them --
    (
        11,
        """
ALTER TABLE functions ADD COLUMN provisional INTEGER NOT NULL DEFAULT 0;
""",
    ),
    # -- 12 (realtime): published messages; a run's own channel written by triggers, so every status
    # change and step end is published in the transaction that makes it. The table and triggers
    # differ by dialect (DIALECT_ONLY); ids increase in commit order on both backends ------------
    (12, ""),
    # -- 13 (coordination): signal names waited on (one run per name), signals held for a wait, the
    # fields lookback waits match on and the values of events' fields there, and paused functions -----
    (
        13,
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
    # -- 14 (connect visibility): what a Connect worker said of itself — its SDK (language), the
    # SDK's version and its maxWorkerConcurrency. NULL sdk: one of Outlast's own worker processes ---
    (
        14,
        """
ALTER TABLE workers ADD COLUMN sdk TEXT;
ALTER TABLE workers ADD COLUMN sdk_version TEXT;
ALTER TABLE workers ADD COLUMN capacity INTEGER;
""",
    ),
    # -- 15 (realtime cost): a run's own channel is written only while someone watches the run (a
    # row here, kept for the retention after its last subscriber left); the triggers of 12 check
    # it. PostgreSQL message ids no longer take a global lock (DIALECT_ONLY, storage/sql/realtime.py)
    (
        15,
        """
CREATE TABLE watched_runs (
    run_id TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);
""",
    ),
    # -- 16 (idempotent invoke): events found by their sender's id, for `app.invoke(..., id=)`
    # to hand back the run of the event that took the id. Partial: most events carry no id ------
    (
        16,
        """
CREATE INDEX events_by_sender_id ON events (dedupe_id, id) WHERE dedupe_id IS NOT NULL;
""",
    ),
    # -- 17 (performance): events still to be matched against expression waits, after their ingest
    # (`expression_waits`); `last_wait`: the newest expression wait stored when the event came, found
    # by the index of expression waits in id order --------------------------------------------------
    (
        17,
        """
CREATE TABLE wait_checks (
    event_id TEXT PRIMARY KEY,
    event_name TEXT NOT NULL,
    last_wait TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX waits_by_expression ON waits (event_name, id) WHERE match_field IS NULL;
""",
    ),
    # -- 18 (performance): a run's defer rows (`storage/sql/defers.py`), read at every run's end; few
    # runs have any, so this index is nearly empty and the read of a batch of ending runs costs
    # nothing, where PostgreSQL's planner chose to read all of `steps` for it in tables of up to
    # tens of thousands of steps ------------------------------------------------------------------
    (
        18,
        """
CREATE INDEX steps_defers ON steps (run_id) WHERE kind IN ('defer', 'defer_abort');
""",
    ),
]

_MESSAGES_TABLE = """
CREATE TABLE messages (
    id {id},
    channel TEXT NOT NULL,
    topic TEXT NOT NULL,
    data TEXT NOT NULL,
    run_id TEXT,
    ts BIGINT NOT NULL
);
CREATE INDEX messages_by_channel ON messages (channel, id);
CREATE INDEX messages_by_ts ON messages (ts);
CREATE INDEX messages_by_run ON messages (run_id, id);
"""
_RUN_STATUS_VALUES = "('run:' || NEW.id, 'status', {json}('status', NEW.status){cast}, NEW.id,"
_RUN_STATUS_VALUES += " COALESCE(NEW.ended_at, NEW.started_at, NEW.created_at))"
_STEP_END_VALUES = "('run:' || NEW.run_id, 'step', {json}('id', NEW.step_id, 'status', NEW.status){cast}, NEW.run_id,"
_STEP_END_VALUES += " COALESCE(NEW.ended_at, NEW.started_at, 0))"
_MESSAGE_COLUMNS = "INSERT INTO messages (channel, topic, data, run_id, ts) VALUES "
_ENDED = "NEW.status IN ('completed', 'failed', 'cancelled')"
#: PostgreSQL: an id is taken under a transaction-scoped advisory lock, so ids are handed out in
#: commit order (a subscriber that resumes after id n can never miss a smaller id committed later);
#: the NOTIFY reaches subscribers in every process once the transaction commits
MESSAGE_ID_LOCK = 7_424_115_301
MESSAGES_NOTIFY_CHANNEL = "outlast_messages"

DIALECT_ONLY: dict[str, dict[int, str]] = {
    "sqlite": {
        12: _MESSAGES_TABLE.format(id="INTEGER PRIMARY KEY AUTOINCREMENT")
        + f"""
CREATE TRIGGER runs_status_message AFTER UPDATE OF status ON runs WHEN NEW.status <> OLD.status
BEGIN {_MESSAGE_COLUMNS}{_RUN_STATUS_VALUES.format(json="json_object", cast="")}; END;
CREATE TRIGGER steps_end_message AFTER INSERT ON steps WHEN {_ENDED}
BEGIN {_MESSAGE_COLUMNS}{_STEP_END_VALUES.format(json="json_object", cast="")}; END;
CREATE TRIGGER steps_end_change_message AFTER UPDATE OF status ON steps WHEN NEW.status <> OLD.status AND {_ENDED}
BEGIN {_MESSAGE_COLUMNS}{_STEP_END_VALUES.format(json="json_object", cast="")}; END;
""",
    },
    "postgresql": {
        12: _MESSAGES_TABLE.format(id="BIGINT PRIMARY KEY")
        + f"""
CREATE SEQUENCE messages_ids;
CREATE FUNCTION outlast_message_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({MESSAGE_ID_LOCK});
    NEW.id := nextval('messages_ids');
    PERFORM pg_notify('{MESSAGES_NOTIFY_CHANNEL}', '');
    RETURN NEW;
END $$;
CREATE TRIGGER messages_in_commit_order BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION outlast_message_id();
CREATE FUNCTION outlast_run_status_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN {_MESSAGE_COLUMNS}{_RUN_STATUS_VALUES.format(json="json_build_object", cast="::text")}; RETURN NULL; END $$;
CREATE TRIGGER runs_status_message AFTER UPDATE OF status ON runs FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status) EXECUTE FUNCTION outlast_run_status_message();
CREATE FUNCTION outlast_step_end_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN {_MESSAGE_COLUMNS}{_STEP_END_VALUES.format(json="json_build_object", cast="::text")}; RETURN NULL; END $$;
CREATE TRIGGER steps_end_message AFTER INSERT ON steps FOR EACH ROW WHEN ({_ENDED})
    EXECUTE FUNCTION outlast_step_end_message();
CREATE TRIGGER steps_end_change_message AFTER UPDATE OF status ON steps FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status AND {_ENDED}) EXECUTE FUNCTION outlast_step_end_message();
""",
    },
}

_WATCHED = "EXISTS (SELECT 1 FROM watched_runs WHERE run_id = {run})"
#: PostgreSQL: each message-writing transaction holds a shared advisory lock keyed by
#: `MESSAGE_ID_FLOOR` + the sequence's last value, taken before its first id (once: a
#: transaction-local setting says it is held); readers deliver only ids
#: below every such lock (storage/sql/realtime.py), so no writer waits for another
MESSAGE_ID_FLOOR = 1 << 62
#: PostgreSQL: a step end or status change takes one of these locks (shared; its run's bucket of
#: `RUN_WATCH_BUCKETS`, so a transaction ending thousands of runs holds a few locks); watching a
#: run takes its bucket's exclusively, so the watch's catch-up sees every change that did not see
#: the watch
RUN_WATCH_LOCKS = 74_241_153
RUN_WATCH_BUCKETS = 16
_WATCH_LOCK = f"PERFORM pg_advisory_xact_lock_shared({RUN_WATCH_LOCKS}, hashtext({{run}}) & {RUN_WATCH_BUCKETS - 1})"
_SQLITE_WATCHED_TRIGGERS = f"""
DROP TRIGGER runs_status_message;
DROP TRIGGER steps_end_message;
DROP TRIGGER steps_end_change_message;
CREATE TRIGGER runs_status_message AFTER UPDATE OF status ON runs
WHEN NEW.status <> OLD.status AND {_WATCHED.format(run="NEW.id")}
BEGIN {_MESSAGE_COLUMNS}{_RUN_STATUS_VALUES.format(json="json_object", cast="")}; END;
CREATE TRIGGER steps_end_message AFTER INSERT ON steps WHEN {_ENDED} AND {_WATCHED.format(run="NEW.run_id")}
BEGIN {_MESSAGE_COLUMNS}{_STEP_END_VALUES.format(json="json_object", cast="")}; END;
CREATE TRIGGER steps_end_change_message AFTER UPDATE OF status ON steps
WHEN NEW.status <> OLD.status AND {_ENDED} AND {_WATCHED.format(run="NEW.run_id")}
BEGIN {_MESSAGE_COLUMNS}{_STEP_END_VALUES.format(json="json_object", cast="")}; END;
"""
_POSTGRES_WATCHED_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION outlast_message_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('outlast.message_floor', true) IS DISTINCT FROM 'held' THEN
        PERFORM pg_advisory_xact_lock_shared({MESSAGE_ID_FLOOR} + (SELECT last_value FROM messages_ids));
        PERFORM set_config('outlast.message_floor', 'held', true);
    END IF;
    NEW.id := nextval('messages_ids');
    PERFORM pg_notify('{MESSAGES_NOTIFY_CHANNEL}', '');
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION outlast_run_status_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_WATCH_LOCK.format(run="NEW.id")};
    IF {_WATCHED.format(run="NEW.id")} THEN
        {_MESSAGE_COLUMNS}{_RUN_STATUS_VALUES.format(json="json_build_object", cast="::text")};
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION outlast_step_end_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_WATCH_LOCK.format(run="NEW.run_id")};
    IF {_WATCHED.format(run="NEW.run_id")} THEN
        {_MESSAGE_COLUMNS}{_STEP_END_VALUES.format(json="json_build_object", cast="::text")};
    END IF;
    RETURN NULL;
END $$;
"""
DIALECT_ONLY["sqlite"][15] = _SQLITE_WATCHED_TRIGGERS
DIALECT_ONLY["postgresql"][15] = _POSTGRES_WATCHED_FUNCTIONS

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
    extras = [POSTGRES_ONLY if backend == "postgresql" else {}, DIALECT_ONLY[backend]]
    return [
        (version, ";".join([script, *(extra[version] for extra in extras if version in extra)]))
        for version, script in MIGRATIONS
    ]


def statements(script: str) -> list[str]:
    """A migration's statements: split at semicolons, except inside `$$` bodies (PostgreSQL
    functions) and `BEGIN ... END` trigger bodies (SQLite)."""
    found: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending = f"{pending};{piece}" if pending else piece
        in_dollars = pending.count("$$") % 2 == 1
        in_trigger = bool(_TRIGGER_BODY.search(pending)) and not _TRIGGER_END.search(pending)
        if not (in_dollars or in_trigger):
            if pending.strip():
                found.append(pending)
            pending = ""
    if pending.strip():
        found.append(pending)
    return found


_TRIGGER_BODY = re.compile(r"CREATE\s+TRIGGER\b[^$]*\bBEGIN\b", re.IGNORECASE)
_TRIGGER_END = re.compile(r"\bEND\s*$", re.IGNORECASE)


@functools.cache
def tables() -> tuple[str, ...]:
    """The tables the migrations create (upkeep analyzes these, and no one else's)."""
    scripts = [script for _, script in migrations_for("sqlite")]
    return tuple(sorted({name for script in scripts for name in re.findall(r"CREATE TABLE (\w+)", script)}))
