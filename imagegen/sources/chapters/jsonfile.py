"""The stage's small files: JSON as written, content digests, timestamps, durable writes.

:func:`imagegen.files.write_atomic` writes a temporary file, fsyncs and renames it; here the
folder is fsynced too, so the rename itself survives a power cut, not only the bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from ...files import write_atomic

JSON = str | int | float | bool | None | list["JSON"] | dict[str, "JSON"]


def dump_json(value: JSON) -> bytes:
    """Indented UTF-8 JSON; ``ensure_ascii=False`` keeps Turkish titles readable (seed 001)."""
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def digest(value: JSON) -> str:
    """ "sha256:<hex>" of ``value`` as canonical JSON (sorted keys, no spaces). Pure."""
    canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def iso_utc(when: datetime) -> str:
    """``when`` as the manifests write it: "2026-02-28T10:30:00Z" (seed 002, section 6.1)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_durable(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp, fsync, rename), then fsync its folder."""
    write_atomic(path, data)
    fsync_dir(path.parent)


def write_json(path: Path, value: JSON) -> None:
    """:func:`write_durable` of :func:`dump_json`."""
    write_durable(path, dump_json(value))


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable. A no-op where folders cannot be opened (Windows)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
