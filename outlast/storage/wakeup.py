"""Wake-ups across processes sharing one SQLite file: Unix datagram sockets in one directory.

SQLite has no LISTEN/NOTIFY, so an idle worker in another process than the sender would only see
new work at its next poll. Instead, each listening process binds a datagram socket
`<pid>-<random>.sock` in the database's wake directory (`wake_directory`): `<database file>.wake/`,
created on demand with the umask's permissions, like SQLite's own -wal and -shm files. A path too
long for a socket name (about 100 bytes) uses `<temp dir>/outlast-wake-<hash of the database's
real path>/` instead. After committing a group that holds new or newly due work, the store's
writer thread rings (`Doorbell.ring`): one byte to every socket there but its own, each send
non-blocking with its errors ignored (a full buffer already holds a wake-up). A socket nobody
holds any more (its process died without closing) refuses the byte and is unlinked.

A `Listener` thread blocks on its socket, drains what arrived and calls its callback once per
batch: an idle listener costs no CPU. Callers keep polling, rarely, as a safety net.

Cost of a ring when nobody listens: one `stat` of the directory. The listing is cached while the
directory's mtime is unchanged and old enough that a change within the same clock tick (file
times are coarse) would have moved it (`_SETTLE_NS`).

Where there is no AF_UNIX (Windows), or the socket cannot be bound (permissions), there are no
wake-ups and workers poll at `poll_interval_ms`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable

log = logging.getLogger("outlast.sqlite")

#: longest socket path used: below sun_path's 104 (macOS) or 108 (Linux) bytes, with its NUL
_MAX_PATH = 100
#: longest socket name: "<pid>-<8 hex>.sock" with a pid of up to 10 digits
_MAX_NAME = 24
#: a listing is trusted while the directory's mtime is unchanged, once that mtime is this old
_SETTLE_NS = 50_000_000
_SUFFIX = ".sock"


def wake_directory(db_path: str) -> str | None:
    """Where the listeners of the SQLite file `db_path` bind their sockets; None when there are no
    wake-ups (in memory, no AF_UNIX). Every process derives the same directory from the file."""
    if db_path == ":memory:" or not hasattr(socket, "AF_UNIX") or not hasattr(socket, "MSG_DONTWAIT"):
        return None
    real = os.path.realpath(db_path)
    beside = real + ".wake"
    if len(os.fsencode(beside)) + 1 + _MAX_NAME <= _MAX_PATH:
        return beside
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"outlast-wake-{digest}")


class Doorbell:
    """Rings every listener of a wake directory. Used from one thread (the store's writer)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        #: this process's own socket, which is not rung (in-process wake-ups exist already)
        self.own: str | None = None
        self._sock: socket.socket | None = None
        self._paths: list[str] = []
        self._mtime: int | None = None
        self._settled = False

    def ring(self) -> None:
        for path in self._listeners():
            if path != self.own:
                self._send(path)

    def rings_anyone(self) -> bool:
        """Whether a ring now would reach a listener (another process's socket is bound)."""
        return any(path != self.own for path in self._listeners())

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _listeners(self) -> list[str]:
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError:
            self._mtime = None
            return []  # nobody ever listened
        if mtime != self._mtime or not self._settled:
            listed_at = time.time_ns()
            try:
                with os.scandir(self.directory) as entries:
                    self._paths = [e.path for e in entries if e.name.endswith(_SUFFIX)]
            except OSError:
                self._paths = []
            self._mtime, self._settled = mtime, listed_at - mtime > _SETTLE_NS
        return self._paths

    def _send(self, path: str) -> None:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        try:
            self._sock.sendto(b"\x01", path)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(OSError):
                os.unlink(path)  # its process died without closing; nobody will ever read it
            self._mtime = None
        except OSError:
            pass  # a full buffer (a wake-up is pending already), no permission: the poll remains


def start_listener(directory: str | None, callback: Callable[[], None], doorbell: Doorbell | None) -> Listener | None:
    """A started listener on `directory` (its own doorbell then skips it), or None when there is
    no directory or its socket cannot be bound (callers poll instead)."""
    if directory is None:
        return None
    listener = Listener(directory, callback)
    if not listener.start():
        return None
    if doorbell is not None:
        doorbell.own = listener.path
    return listener


class Listener:
    """A socket in the wake directory and a thread that calls `callback()` when it is rung."""

    def __init__(self, directory: str, callback: Callable[[], None]) -> None:
        self.directory = directory
        self.path = os.path.join(directory, f"{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}")
        self._callback = callback
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> bool:
        """Bind and listen; False (after a warning) if the socket cannot be bound."""
        try:
            self._sock = self._bind()
        except OSError as exc:
            log.warning("no wake-ups across processes (workers poll instead): cannot bind %s: %s", self.path, exc)
            return False
        self._thread = threading.Thread(target=self._serve, name="outlast-sqlite-wakeup", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop the thread, then remove the socket and, if it is empty now, the directory."""
        if self._sock is None:
            return
        self._stopping = True
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as bell, contextlib.suppress(OSError):
            bell.sendto(b"\x00", self.path)
        if self._thread is not None:
            self._thread.join(5)
        for remove, path in ((os.unlink, self.path), (os.rmdir, self.directory)):
            with contextlib.suppress(OSError):
                remove(path)  # the directory stays while another process listens
        self._sock.close()
        self._sock = self._thread = None

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        attempts = 3  # another process may remove the directory as it empties
        while True:
            try:
                os.makedirs(self.directory, exist_ok=True)
                sock.bind(self.path)
                return sock
            except FileNotFoundError:
                attempts -= 1
                if attempts:
                    continue
                sock.close()
                raise
            except BaseException:
                sock.close()
                raise

    def _serve(self) -> None:
        assert self._sock is not None
        sock = self._sock
        self._wake()  # whatever was committed before we listened
        while True:
            try:
                sock.recv(16)
                while True:  # one callback for every byte that arrived meanwhile
                    sock.recv(16, socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            except OSError:
                return
            if self._stopping:
                return
            self._wake()

    def _wake(self) -> None:
        try:
            self._callback()
        except Exception:
            log.exception("wake-up listener failed")
