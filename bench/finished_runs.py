"""Fill a migrated database with N finished runs of the 3-step function, with set-based SQL.

Each filled run looks like what a real run of `bench.workloads.three_steps` leaves behind with
retention off: its `runs` row (completed, output 3), its three `steps` rows (keys are the step
ids' hashes, as the SDK makes them), its trigger event `bench/go` and the
`inngest/function.finished` event its end emitted. Ids are ULIDs of their creation times; the runs
are spread over the 30 days before `now`, oldest first, so every real run made afterwards sorts
after them (as in a long-lived database). Nothing else outlives a run of this function: its queue
item is deleted by the finishing commit and it has no waits, logs, failures or effects.

One INSERT ... SELECT per table over a sequence of numbers (PostgreSQL `generate_series`, SQLite
a recursive CTE), in one transaction, with the tables' secondary indexes dropped while it runs and
made again after (a sorted build is several times faster than a million inserts into each); then
ANALYZE (and VACUUM on PostgreSQL, whose autovacuum may
be off), as a real long-lived database would have statistics and a visibility map.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from bench.workloads import STEPS, app, three_steps
from outlast.core.ids import _ALPHABET
from outlast.core.keys import step_key

DAY_MS = 86_400_000
#: the filled runs end this long before `now`
GAP_MS = 60_000
_STEP_NAMES = ("a", "b", "c")
#: the tables filled (their secondary indexes are made again after the rows are in)
FILLED = "('runs', 'steps', 'events')"
assert len(_STEP_NAMES) == STEPS


def _b32(value: str, first_shift: int, chars: int) -> str:
    """SQL for `chars` Crockford base-32 digits of an integer expression, most significant first."""
    return " || ".join(
        f"substr('{_ALPHABET}', CAST((({value}) >> {first_shift - 5 * k}) & 31 AS INTEGER) + 1, 1)"
        for k in range(chars)
    )


def ulid_sql(ms: str, rand: str) -> str:
    """SQL for a ULID of time `ms` whose random part is the (non-negative, < 2^63) integer `rand`."""
    return f"({_b32(ms, 45, 10)} || {_b32(rand, 75, 16)})"


def _timeline(n: int, now: int) -> dict[str, Any]:
    return {"n": n, "start": now - GAP_MS - 30 * DAY_MS, "span": 30 * DAY_MS}


def _numbers(backend: str) -> str:
    """A CTE `nums(i, c)`: i in 0..n-1 and run i's creation time c."""
    if backend == "postgresql":
        source = "SELECT i FROM generate_series(0, %(n)s - 1) AS g(i)"
    else:
        source = "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < :n) SELECT i FROM g"
    p = "%({})s" if backend == "postgresql" else ":{}"
    return (
        f"nums AS (SELECT i, CAST({p.format('start')} + (CAST(i AS BIGINT) * {p.format('span')}) / {p.format('n')}"
        f" AS BIGINT) AS c FROM ({source}) s)"
    )


def statements(backend: str) -> list[str]:
    """The INSERT ... SELECT statements (named parameters n, start, span; `backend` is "sqlite" or
    "postgresql"). Run i: created at c, trigger event ULID(c, 3i), run ULID(c, 3i+1), steps at
    c+1..c+3, ended and finished event ULID(c+5, 3i+2) at c+5."""
    fn = three_steps.id
    run_id, event_id = ulid_sql("c", "3 * i + 1"), ulid_sql("c", "3 * i")
    finished_id = ulid_sql("c + 5", "3 * i + 2")
    i_text = "CAST(i AS TEXT)"
    trigger = (
        '\'{"id":"\' || '
        + event_id
        + ' || \'","name":"bench/go","data":{"i":\' || '
        + i_text
        + ' || \',"key":0},"user":{},"ts":\' || CAST(c AS TEXT) || \'}\''
    )
    finished_data = (
        f'\'{{"function_id":"{app.id}-{fn}","run_id":"\' || {run_id} || \'","event":\' || '
        f"{trigger} || ',\"events\":[' || {trigger} || "
        '\'],"_inngest":{"status":"completed"},"result":3}\''
    )
    steps = " UNION ALL ".join(
        f"SELECT {k} AS k, '{name}' AS step_id, '{step_key(name, 0)}' AS key" for k, name in enumerate(_STEP_NAMES)
    )
    with_nums = f"WITH {_numbers(backend)}"
    return [
        f"{with_nums} INSERT INTO events (id, name, data, user_data, ts, dedupe_id, received_at, trace)"
        f" SELECT {event_id}, 'bench/go', '{{\"i\":' || {i_text} || ',\"key\":0}}', '{{}}', c, NULL, c, NULL FROM nums"
        f" UNION ALL SELECT {finished_id}, 'inngest/function.finished', {finished_data}, '{{}}', c + 5, NULL, c + 5,"
        " NULL FROM nums",
        f"{with_nums} INSERT INTO runs (id, app_id, function_id, status, event_ids, first_event_id, output, error,"
        " attempt, created_at, started_at, ended_at, parent_run_id, skip_reason, finish_timeout_ms, singleton_key,"
        " has_waits, has_timeouts, log_count)"
        f" SELECT {run_id}, '{app.id}', '{fn}', 'completed', '[\"' || {event_id} || '\"]', {event_id}, '3', NULL,"
        " 0, c, c, c + 5, NULL, NULL, NULL, NULL, 0, 0, 0 FROM nums",
        f"{with_nums} INSERT INTO steps (run_id, key, step_id, kind, status, attempts, output, error, started_at,"
        " ended_at, deadline, timeout_output, seq, detail)"
        f" SELECT {run_id}, s.key, s.step_id, 'run', 'completed', 1, '1', NULL, c + 1 + s.k, c + 1 + s.k, NULL,"
        f" 'null', (c + 1 + s.k) * 1000 + 500, NULL FROM nums CROSS JOIN ({steps}) s ORDER BY 1, 2",
    ]


def fill_sqlite(path: str, n: int, now: int) -> None:
    """Fill the (migrated, closed) SQLite file; it is left in WAL mode, analyzed."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = DELETE")  # one big transaction needs no WAL copy of every page
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("BEGIN")
        indexes = conn.execute(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN {FILLED}"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        for sql in statements("sqlite"):
            conn.execute(sql, _timeline(n, now))
        for _, sql in indexes:
            conn.execute(sql)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()


def fill_postgres(url: str, n: int, now: int) -> None:
    """Fill the (migrated) PostgreSQL database, then VACUUM ANALYZE what was filled (autovacuum may
    be off: this is what it would have done on a long-lived database)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        indexes = conn.execute(
            f"SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN {FILLED}"
            " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}".encode())
        for sql in statements("postgresql"):
            conn.execute(sql.encode(), _timeline(n, now))
        for _, sql in indexes:
            conn.execute(sql.encode())
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
