"""Reference images as sent inline, read once per run and kept in a bounded cache.

A combo's images go with every prompt of every catalog (seed 003: combos x catalogs), so one
file is sent many times in a batch. The cache reads it once, keeps the most recently used
files up to ``max_bytes``, and answers a hit on the event loop without a thread hop.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

from .images import probe
from .providers.base import Reference

#: Bytes of reference images kept between jobs (64 MB: a few dozen combos of camera JPEGs).
DEFAULT_MAX_BYTES = 64_000_000


class ReferenceCache:
    """Path -> :class:`~imagegen.providers.base.Reference`, least recently used dropped first.

    Safe to use from the event loop and worker threads at once. A file is read when first
    asked for and not again while it stays cached: edits to a reference image during a run
    are not seen, as the planner's job list is not.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._refs: OrderedDict[str, Reference] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def cached(self, paths: Sequence[str]) -> tuple[Reference, ...] | None:
        """Every path's reference if all are cached (no file access), else None."""
        with self._lock:
            refs = []
            for path in paths:
                ref = self._refs.get(path)
                if ref is None:
                    return None
                self._refs.move_to_end(path)
                refs.append(ref)
            return tuple(refs)

    def load(self, paths: Sequence[str]) -> tuple[Reference, ...]:
        """Every path's reference, reading the files not cached (blocking: run in a thread).

        The role is the file stem in lower case, the MIME type what the bytes are (their
        header decides, not the extension). Raises OSError (unreadable) or ValueError (not an
        image), naming the file.
        """
        refs = []
        for path in paths:
            with self._lock:
                ref = self._refs.get(path)
            if ref is None:
                ref = _read(Path(path))
                self._keep(path, ref)
            refs.append(ref)
        return tuple(refs)

    def _keep(self, path: str, ref: Reference) -> None:
        with self._lock:
            old = self._refs.pop(path, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._refs[path] = ref
            self._bytes += len(ref.data)
            while self._bytes > self.max_bytes and len(self._refs) > 1:
                _, dropped = self._refs.popitem(last=False)
                self._bytes -= len(dropped.data)


def _read(path: Path) -> Reference:
    data = path.read_bytes()
    try:
        mime_type = probe(data).mime_type
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return Reference(path.stem.lower(), mime_type, data)
