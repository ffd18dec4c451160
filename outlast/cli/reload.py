"""`outlast dev --reload`: a supervisor that runs `outlast dev` in a child process and restarts it
whenever a Python file under the app's directory changes.

The supervisor handles SIGINT and SIGTERM itself, even when it was started with SIGINT ignored (as
a shell's background job is), and stops its child with SIGTERM, then SIGKILL after a grace period.
The child dies with its supervisor: on Linux the kernel sends it SIGTERM when the supervisor dies,
even by SIGKILL (PR_SET_PDEATHSIG); elsewhere a thread in the child watches its parent. A child
left behind would keep the port and the database busy for good.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from types import FrameType

from outlast.errors import OutlastError

#: set in the child's environment: the supervisor's pid, which the child must not outlive
PARENT_ENV = "OUTLAST_RELOAD_PARENT"
#: how long a child has to stop cleanly on SIGTERM before it is killed
STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1
_PARENT_POLL_S = 0.5


def supervise(where: str, argv: list[str]) -> int:
    """Run `outlast <argv>` (without `--reload`) in a child, restarted on each change under `where`,
    until SIGINT or SIGTERM; the child is stopped before this returns."""
    try:
        import watchfiles
    except ImportError:
        raise OutlastError("--reload needs watchfiles: pip install 'outlast[server]'") from None
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"outlast: watching {where} for changes to *.py", flush=True)
    child = _start(argv)
    try:
        changes_seen = watchfiles.watch(
            where, watch_filter=watchfiles.PythonFilter(), stop_event=stop, raise_interrupt=False
        )
        for changes in changes_seen:
            print(f"outlast: {len(changes)} file(s) changed, restarting", flush=True)
            _stop(child)
            child = _start(argv)
    finally:
        _stop(child)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, PARENT_ENV: str(os.getpid())}
    child = subprocess.Popen([sys.executable, "-m", "outlast.cli", *argv], env=env)
    print(f"outlast: dev server started (pid {child.pid})", flush=True)
    return child


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        print(f"outlast: the dev server did not stop within {STOP_GRACE_S:g}s; killing it", flush=True)
        child.kill()
        child.wait()


def die_with_parent() -> None:
    """In a child started by `supervise`: get SIGTERM (a clean stop) when the supervisor dies."""
    expected = os.environ.pop(PARENT_ENV, "")
    if not expected.isdigit():
        return
    parent = int(expected)
    if not _kernel_signals_on_parent_death():
        threading.Thread(target=_watch_parent, args=(parent,), name="outlast-parent-watch", daemon=True).start()
    if os.getppid() != parent:  # the supervisor died before we could ask to be told
        os.kill(os.getpid(), signal.SIGTERM)


def _kernel_signals_on_parent_death() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL_S)
    os.kill(os.getpid(), signal.SIGTERM)
