"""How long `import outlast` takes, in a fresh interpreter each time, beside the heavy modules it
must not pull in. `python -m bench.import_time [--samples 20] [--old PYTHON]`

Each sample is one new process timing its own `import outlast` with `time.perf_counter`, so
interpreter start-up is not counted. `--old PYTHON` (e.g. /work/wt-old/.venv/bin/python, a
checkout of an earlier commit with its own venv) measures that version in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.workloads import table

PROBE = (
    "import sys, time, json; t = time.perf_counter(); import outlast; ms = (time.perf_counter() - t) * 1000;"
    "heavy = sorted(m for m in ('cel', 'croniter', 'asyncio', 'sqlite3', 'starlette', 'uvicorn', 'psycopg',"
    " 'httpx', 'pydantic', 'jinja2', 'prometheus_client', 'opentelemetry') if m in sys.modules);"
    "print(json.dumps({'ms': ms, 'heavy': heavy}))"
)


def sample(python: str, cwd: Path | None) -> dict[str, Any]:
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True, cwd=cwd).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def measure(label: str, python: str, samples: int, cwd: Path | None) -> dict[str, Any]:
    sample(python, cwd)  # warm the file system cache and the bytecode cache
    runs = [sample(python, cwd) for _ in range(samples)]
    times = sorted(r["ms"] for r in runs)
    return {
        "version": label,
        "samples": samples,
        "p50_ms": statistics.median(times),
        "p90_ms": times[int(0.9 * (len(times) - 1))],
        "max_ms": times[-1],
        "heavy_modules_imported": ", ".join(runs[-1]["heavy"]) or "none",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--old", help="the Python of another checkout to measure beside this one")
    args = parser.parse_args()
    rows = [measure("this checkout", sys.executable, args.samples, None)]
    if args.old:
        rows.append(measure(f"old ({args.old})", args.old, args.samples, Path(args.old).parents[2]))
    print(f"`import outlast`, {args.samples} fresh processes each\n")
    print(table(rows, ["version", "samples", "p50_ms", "p90_ms", "max_ms", "heavy_modules_imported"]))


if __name__ == "__main__":
    main()
