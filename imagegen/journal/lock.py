"""Who runs a session: the OS lock that keeps a session to one process, and the owner record.

The lock (``S.lock``, filelock: an OS ``flock`` the kernel drops when its holder dies) is taken
once, when a session is created or opened for writing, and held by that one journal object
until it closes. Readers (``--status``, the contact sheet) never touch it: they read the
owner that the running process records in the journal (:class:`~imagegen.model.Owner`) and ask
the OS whether that process is still alive, so a status poll can never make a starting run
fail with "locked".
"""

from __future__ import annotations

import contextlib
import os
import socket
from datetime import datetime
from pathlib import Path

import filelock

from ..errors import SessionLocked
from ..model import Owner


def lock_path(sessions_dir: Path, session_id: str) -> Path:
    return sessions_dir / f"{session_id}.lock"


class SessionLock:
    """The OS lock of one session. :meth:`acquire` once, :meth:`release` once."""

    def __init__(self, sessions_dir: Path, session_id: str) -> None:
        self.session_id = session_id
        self.path = lock_path(sessions_dir, session_id)
        # Not a per-path singleton: in-process tests open sessions the way two processes would.
        self._lock = filelock.FileLock(str(self.path), is_singleton=False, thread_local=False)
        self.held = False

    def acquire(self) -> None:
        """Take the lock now or raise SessionLocked (another process runs the session)."""
        existed = self.path.exists()
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout as exc:
            raise SessionLocked(
                f"session {self.session_id} is being run by another process "
                f"(lock {self.path}); wait for it or follow it with --status {self.session_id}"
            ) from exc
        self.held = True
        self._created = not existed

    def release(self, *, remove: bool = False) -> None:
        """Let go of the lock; with ``remove``, delete a lock file this object created (a
        refused open leaves nothing behind)."""
        if not self.held:
            return
        self._lock.release(force=True)
        self.held = False
        if remove and self._created:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to detect a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def current_owner() -> Owner:
    """This process, as a session's owner record."""
    pid = os.getpid()
    return Owner(
        pid, socket.gethostname(), datetime.now().isoformat(timespec="seconds"), _process_start(pid)
    )


def owner_alive(owner: Owner | None) -> bool:
    """True if the recorded owner may still be running (another host: assumed so)."""
    if owner is None:
        return False
    if owner.host != socket.gethostname():
        return True
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    if owner.process_start is not None:
        start = _process_start(owner.pid)
        if start is not None and start != owner.process_start:
            return False  # the pid now belongs to a later process
    return True
