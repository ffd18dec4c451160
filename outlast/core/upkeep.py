"""The values of a store's upkeep: what retention prunes and how often, what it removed, and the
queue's shape as metrics see it (the pruner that acts on them is `outlast.runtime.pruner`).

Retention deletes finished runs (with their steps, failure histories, log lines and event
effects) that ended before the cutoff, and events received before it that no run refers to any
more (an active run's trigger events, and those of a finished run not yet pruned, stay). Dedupe
and idempotency keys are not retention's business: they expire 24 h after they were taken,
whatever the retention.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

RETENTION_CHORE = "retention"
#: finished runs (and, separately, events) deleted per transaction: short enough that claims and
#: ingest never wait long behind one
PRUNE_BATCH = 200
#: pause between two batches, so pruning a large backlog leaves the store to the workload
PRUNE_PAUSE_S = 0.02
#: how long the pruning worker holds the retention lease without renewing it
PRUNE_LEASE_MS = 60_000
MIN_PRUNE_INTERVAL_MS = 1_000
MAX_PRUNE_INTERVAL_MS = 300_000
#: tables rewritten all the time (claims, leases, heartbeats): vacuumed every round, where the
#: database does not vacuum by itself
CHURNING_TABLES = ("queue", "workers", "chores", "meta", "gcra", "gathering")
#: tables retention deletes from: vacuumed after a round that removed rows, at most this often
PRUNED_TABLES = (
    "runs",
    "steps",
    "step_failures",
    "run_logs",
    "event_effects",
    "events",
    "dedupe",
    "wait_fields",
    "gcra",
    "gathering",
)
VACUUM_PRUNED_EVERY_MS = 60_000
#: how often the retention lease holder looks at its chores
CHORE_TICK_MS = 10_000


@dataclass(slots=True, kw_only=True)
class PruneResult:
    """What pruning removed."""

    runs: int = 0
    steps: int = 0
    events: int = 0
    dedupe_keys: int = 0
    #: rate-limit, throttle, debounce and batch keys that no longer did anything
    flow_keys: int = 0
    wait_fields: int = 0
    #: the batch examined as many events as it could: more may be deletable past them
    more: bool = False

    def __add__(self, other: PruneResult) -> PruneResult:
        return PruneResult(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "more"},
            more=other.more,
        )

    def __bool__(self) -> bool:
        """Whether anything was removed."""
        return any(getattr(self, f.name) for f in fields(self) if f.name != "more")

    def describe(self) -> str:
        return (
            f"{self.runs} runs ({self.steps} steps), {self.events} events, {self.dedupe_keys} expired dedupe "
            f"keys, {self.flow_keys} stale flow-control keys, {self.wait_fields} unused wait index entries"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStat:
    """Work items of one function: `due` wait for a worker (the backlog), `leased` are being run,
    `scheduled` are due later (sleeps, retries, timeouts, cron ticks). `oldest_due_at` is the due
    time of the oldest item waiting for a worker (None when none is due)."""

    app_id: str
    function_id: str
    due: int
    leased: int
    scheduled: int
    oldest_due_at: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueStats:
    functions: list[QueueStat]
    #: stored waits by kind (wait, invoke, cancel)
    waits: dict[str, int]
