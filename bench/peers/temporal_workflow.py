"""The 3-step workload as a Temporal workflow of three local activities (for `bench.peers.temporal_peer`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop() -> int:
    return 1


@workflow.defn
class ThreeSteps:
    @workflow.run
    async def run(self, run: int) -> int:
        total = 0
        for _ in range(3):
            total += await workflow.execute_local_activity(noop, start_to_close_timeout=timedelta(seconds=30))
        return total
