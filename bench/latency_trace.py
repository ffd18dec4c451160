"""Where an idle run's latency goes: `bench.latency`'s run, with a timestamp at each hand-off.

    python -m bench.latency_trace [--samples 100] [--url postgresql://...] [--sqlite]

Wraps (in this process only) the store's request queue, its writer threads' groups and commits,
the replies' return to the event loop, the worker's wake-ups and the step bodies, then runs
`bench.latency`'s samples and prints each milestone's median time after `send` (and one sample's
full timeline). Store requests are named by the Store method that made them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from typing import Any

from bench import latency
from bench.workloads import fresh_sqlite
from outlast.core.collector import tuned_for_service
from outlast.storage.sql import group_commit
from tests.pg import fresh_database_url

T0 = time.perf_counter
marks: list[tuple[float, str]] = []


def mark(label: str) -> None:
    marks.append((time.perf_counter(), label))


def _patch() -> None:
    store_cls = group_commit.GroupCommitStore
    submit = store_cls._submit

    def traced_submit(self: Any, fn: Any, reply: Any, **kw: Any) -> Any:
        frame = sys._getframe(1)
        name = frame.f_code.co_name
        if name in ("_run", "_read"):
            name = frame.f_back.f_code.co_name if frame.f_back else name
        mark(f"{name}: queued")

        def wrapped(tx: Any) -> Any:
            mark(f"{name}: statements start ({threading.current_thread().name})")
            try:
                return fn(tx)
            finally:
                mark(f"{name}: statements end")

        future = submit(self, wrapped, reply, **kw)
        future.add_done_callback(lambda _f: mark(f"{name}: reply on loop"))
        return future

    store_cls._submit = traced_submit  # type: ignore[method-assign]
    deliver = group_commit.deliver

    def traced_deliver(group: Any, outcomes: Any) -> None:
        mark(f"group of {len(group)} committed, replies sent")
        deliver(group, outcomes)

    for module in _modules_using("deliver"):
        module.deliver = traced_deliver
    run_group = group_commit.run_group

    def traced_run_group(session: Any, group: Any) -> Any:
        mark(f"writer picks up a group of {len(group)}")
        return run_group(session, group)

    for module in _modules_using("run_group"):
        module.run_group = traced_run_group
    _patch_runtime()


def _modules_using(name: str) -> list[Any]:
    from outlast.storage import postgres, sqlite

    return [m for m in (group_commit, postgres, sqlite) if getattr(m, name, None) is getattr(group_commit, name)]


def _patch_runtime() -> None:
    from outlast.runtime import worker as worker_mod
    from outlast.storage import postgres

    w = worker_mod.Worker
    on_wake, on_other = w._on_wake, w._on_other_process
    w._on_wake = lambda self: (mark("worker woken"), on_wake(self))[1]  # type: ignore[method-assign]
    w._on_other_process = lambda self: (mark("listener: NOTIFY heard"), on_other(self))[1]  # type: ignore[method-assign]
    commit = postgres.PgSession.commit

    def traced_commit(self: Any, **kw: Any) -> None:
        mark("pg: xid/notify + COMMIT start")
        commit(self, **kw)
        mark("pg: COMMIT done")

    postgres.PgSession.commit = traced_commit  # type: ignore[method-assign]
    import bench.workloads as workloads

    async def noop() -> int:
        mark("step body")
        return 1

    workloads._noop = noop  # type: ignore[assignment]  # looked up by the steps at each call


def trace(url: str, samples: int) -> list[list[tuple[float, str]]]:
    """One timeline per sample, times in ms after `send`."""
    timelines: list[list[tuple[float, str]]] = []
    one = latency._one

    async def traced_one(engine: Any, ended: Any) -> float:
        marks.clear()
        start = time.perf_counter()
        mark("send")
        took = await one(engine, ended)
        mark("end recorded")
        timelines.append([((t - start) * 1000, label) for t, label in marks])
        return took

    latency._one = traced_one  # type: ignore[assignment]
    asyncio.run(latency.outlast_latency(url, samples))
    return timelines[1:]  # the warm-up's first claim is not idle latency


def phases(timeline: list[tuple[float, str]]) -> dict[str, float] | None:
    """The run's own store requests (the send with its claim, then its commits: a result waits
    for the next one, so a 3-step run has three) split into: waiting for the writer thread and
    BEGIN ("to start"), their own statements, and the rest of their group, COMMIT and the way
    back to the loop ("to reply"); and the loop's time between them. None for a sample that
    missed a mark (a send that found the worker busy, a request that failed and ran again)."""
    seen: dict[str, int] = defaultdict(int)
    at: dict[str, float] = {}
    for t, label in timeline:
        key = label.split(" (")[0]
        seen[key] += 1
        at.setdefault(f"{key} #{seen[key]}", t)
    # an idle worker of the sender's process is claimed for in the send's transaction
    first = [("ingest_and_claim", 1)] if "ingest_and_claim: queued #1" in at else [("ingest", 1), ("claim", 1)]
    commits = [("commit", k) for k in range(1, seen["commit: reply on loop"] + 1)]
    out: dict[str, float] = {}
    previous = ("send", at["send #1"])
    for request, k in (*first, *commits):
        marks_of = [at.get(f"{request}: {m} #{k}") for m in ("queued", "statements start", "statements end")]
        reply = at.get(f"{request}: reply on loop #{k}")
        if reply is None or None in marks_of:
            return None
        queued, start, end = (float(m) for m in marks_of if m is not None)
        name = f"{request} {k}" if request == "commit" else request
        out[f"loop: {previous[0]} -> {name} queued"] = queued - previous[1]
        out[f"{name}: queued -> its statements start"] = start - queued
        out[f"{name}: its statements"] = end - start
        out[f"{name}: statements end -> reply on loop"] = reply - end
        previous = (f"{name} reply", reply)
    out[f"loop: {previous[0]} -> end recorded"] = at["end recorded #1"] - previous[1]
    return out


def report(timelines: list[list[tuple[float, str]]]) -> None:
    found = [p for p in map(phases, timelines) if p is not None]
    usual = Counter(tuple(p) for p in found).most_common(1)[0][0] if found else ()
    split = [p for p in found if tuple(p) == usual]
    print(f"{'median ms':>9}  phase ({len(split)} of {len(timelines)} samples took the usual path)")
    for name in usual:
        print(f"{statistics.median(p[name] for p in split):9.3f}  {name}")
    total = statistics.median(tl[-1][0] for tl in timelines)
    print(f"{total:9.3f}  send -> end recorded (median of the totals)\n")
    by_label: dict[str, list[float]] = defaultdict(list)
    for timeline in timelines:
        seen: dict[str, int] = defaultdict(int)
        for t, label in timeline:
            seen[label] += 1
            by_label[f"{label} #{seen[label]}"].append(t)
    rows = sorted(by_label.items(), key=lambda kv: statistics.median(kv[1]))
    print(f"{'median ms':>9}  {'share':>5}  milestone")
    for label, times in rows:
        share = len(times) / len(timelines)
        print(f"{statistics.median(times):9.3f}  {share:5.2f}  {label}")
    middle = sorted(timelines, key=lambda tl: tl[-1][0])[len(timelines) // 2]
    print("\nthe median sample:")
    for t, label in middle:
        print(f"{t:9.3f}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    _patch()
    with tempfile.TemporaryDirectory() as tmp, tuned_for_service():
        if args.sqlite:
            url = fresh_sqlite(f"{tmp}/trace.db")
        else:
            url = fresh_database_url(args.url, "outlast_bench_latency_trace")
        report(trace(url, args.samples))


if __name__ == "__main__":
    main()
