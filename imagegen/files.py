"""Atomic file writes: temporary name, flush, fsync, rename."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file that is flushed, fsynced and renamed.

    A crash leaves either the old file, the new file, or a ``.tmp`` file that is never mistaken
    for a result. With ``exclusive``, an existing ``path`` is never replaced: FileExistsError.
    Other OSErrors (disk full, permissions) propagate after the temporary file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
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
