"""The 3-step workload as a Restate service (served by hypercorn for `bench.peers.restate_peer`)."""

from __future__ import annotations

import restate

bench = restate.Service("Bench")


async def _noop() -> int:
    return 1


@bench.handler("three_steps")
async def three_steps(ctx: restate.Context, run: int) -> int:
    total = 0
    for name in ("a", "b", "c"):
        total += await ctx.run_typed(name, _noop)
    return total


app = restate.app(services=[bench])
