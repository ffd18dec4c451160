"""SQLite: telling subscribers, in this process and others, that realtime messages were committed.

Messages are also written by triggers (a run's status changes, its step ends), so the writer
thread does not know which groups published. After each group it reads `messages`' AUTOINCREMENT
counter (one row of `sqlite_sequence`): when it moved, the group published, and the bell calls
this process's listeners and rings other processes' through wake-up sockets (`wakeup`) in a
directory of their own (`<wake directory>/messages`), so workers are not woken by messages.

Nobody listening (no subscriber in this process, no other process's socket), the counter is not
read: a read transaction after every group, on the writer's thread just as the event loop takes
up the group's replies (issue 28). A listener that comes later reads what was committed before
it from the store itself, and its first group afterwards counts as moved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable

from outlast.storage.wakeup import Doorbell, Listener, start_listener, wake_directory

log = logging.getLogger("outlast.sqlite")
_COUNTER_SQL = "SELECT seq FROM sqlite_sequence WHERE name = 'messages'"
#: the longest socket directory that leaves room for a socket name (see `wakeup`)
_MAX_DIRECTORY = 75


def messages_directory(db_path: str) -> str | None:
    """Where message listeners of the SQLite file `db_path` bind (None: no wake-ups)."""
    base = wake_directory(db_path)
    if base is None:
        return None
    beside = os.path.join(base, "messages")
    if len(os.fsencode(beside)) <= _MAX_DIRECTORY:
        return beside
    digest = hashlib.sha256(os.fsencode(os.path.realpath(db_path))).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"outlast-messages-{digest}")


class MessageBell:
    def __init__(self, db_path: str) -> None:
        self.callbacks: list[Callable[[], None]] = []
        self._directory = messages_directory(db_path)
        self._doorbell = Doorbell(self._directory) if self._directory is not None else None
        self._listener: Listener | None = None
        #: the counter after the last group, as read then; None: not read since nobody listened
        self._seen: int | None = None

    def after_group(self, conn: sqlite3.Connection) -> None:
        """In the writer thread, after a group committed: tell everyone if it published."""
        if not self.callbacks and (self._doorbell is None or not self._doorbell.rings_anyone()):
            self._seen = None  # nobody to tell: no read (see the module's docstring)
            return
        try:
            row = conn.execute(_COUNTER_SQL).fetchone()
        except sqlite3.Error:
            return  # not migrated yet
        counter = row[0] if row is not None else 0
        moved = counter != self._seen  # a first read after nobody listened counts as moved
        self._seen = counter
        if moved:
            self.tell()
            if self._doorbell is not None:
                self._doorbell.ring()

    def tell(self) -> None:
        for callback in list(self.callbacks):
            try:
                callback()
            except Exception:
                log.exception("message listener failed")

    def listen(self) -> bool:
        """Hear other processes' messages; False when they will not be heard (poll instead)."""
        if self._listener is not None:
            return True
        self._listener = start_listener(self._directory, self.tell, self._doorbell)
        return self._listener is not None

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._doorbell is not None:
            self._doorbell.close()
