"""Durable file writes: temporary name, flush, fsync, rename, then fsync the folder.

A rename is only durable once the directory entry is on disk: without the folder's fsync a
power loss can keep a journal entry that names a file whose entry was never written (SQLite
fsyncs the directory for the same reason).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, links) to disk; a no-op where folders cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, exclusive: bool = False, fsync: bool = True) -> None:
    """Write ``data`` to ``path`` through a temporary file that is flushed, fsynced and renamed.

    A crash leaves either the old file, the new file, or a ``.NAME.PID.tmp`` file that is never
    mistaken for a result. With ``exclusive``, an existing ``path`` is never replaced:
    FileExistsError. Other OSErrors (disk full, permissions) propagate after the temporary file
    is removed. ``fsync`` False skips both fsyncs (tests and benchmarks on tmpfs).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        if exclusive:
            # link() fails if the target exists, unlike rename(): nothing is ever overwritten.
            os.link(tmp, path)
            tmp.unlink()
        else:
            tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)
