"""The cost of typed step results: N runs of a 3-step function whose steps return a Pydantic
model (written as JSON, read back as the model on the first run and on replay) beside the same
function whose steps return plain dicts, one in-process worker, each backend.

    python -m bench.typed_results [--runs 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from typing import Any

from pydantic import BaseModel

import outlast
from bench import workloads
from bench.workloads import fresh_sqlite, run_three_steps, table


class Line(BaseModel):
    sku: str
    qty: int
    price: float


def as_model() -> Line:
    return Line(sku="a-1", qty=2, price=9.5)


def as_dict() -> dict[str, Any]:
    return {"sku": "a-1", "qty": 2, "price": 9.5}


@workloads.app.function(id="three-models", trigger="bench/models")
async def three_models(ctx: outlast.Context) -> float:
    lines = [await ctx.step.run(name, as_model) for name in ("a", "b", "c")]
    return sum(line.price for line in lines)


@workloads.app.function(id="three-dicts", trigger="bench/dicts")
async def three_dicts(ctx: outlast.Context) -> float:
    lines = [await ctx.step.run(name, as_dict) for name in ("a", "b", "c")]
    return float(sum(line["price"] for line in lines))


async def best(url_for: Any, runs: int, repeat: int, event: str) -> float:
    times = []
    for _ in range(repeat):
        row = await run_three_steps(url_for(), runs, event=event)
        times.append(row["seconds"])
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000))
        backends = {"memory": lambda: "memory://", "sqlite": lambda: fresh_sqlite(f"{tmp}/t{next(counter)}.db")}
        for backend, url_for in backends.items():
            dicts = asyncio.run(best(url_for, args.runs, args.repeat, "bench/dicts"))
            models = asyncio.run(best(url_for, args.runs, args.repeat, "bench/models"))
            rows.append(
                {
                    "backend": backend,
                    "runs": args.runs,
                    "dicts_s": dicts,
                    "models_s": models,
                    "models_per_dicts": models / dicts,
                }
            )
    print(f"3-step runs, steps returning a model vs a dict, best of {args.repeat} ({os.cpu_count()} cores)\n")
    print(table(rows, ["backend", "runs", "dicts_s", "models_s", "models_per_dicts"]))


if __name__ == "__main__":
    main()
