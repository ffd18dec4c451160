"""The dev log: one line per run state change, printed by `outlast dev` (and `worker -v`)."""

from __future__ import annotations

from outlast.cli.common import stamp
from outlast.core.observe import AttemptEnded, AttemptStarted, Observation


def print_observation(o: Observation) -> None:
    if isinstance(o, AttemptStarted):
        print(f"{stamp()}  {o.run_id}  {o.function_id:<24} running", flush=True)
    elif isinstance(o, AttemptEnded):
        print(f"{stamp()}  {o.run_id}  {o.function_id:<24} {o.outcome}", flush=True)
