"""Reading a session's files: paths, the snapshot, the event log, and folding one into the other.

No writes and no event loop: this is what ``--status`` and the contact sheet load, so it stays
light to import. The file format is described in :mod:`imagegen.journal`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import filelock
import orjson

from .errors import InputError, SessionLocked

FORMAT_VERSION = 1
STATUSES = ("pending", "running", "retry", "completed", "failed")

Doc = dict[str, Any]


def now_iso() -> str:
    """Local time, seconds precision, as in the seed ("2025-01-15T14:30:00")."""
    return datetime.now().isoformat(timespec="seconds")


def snapshot_path(sessions_dir: Path, session_id: str) -> Path:
    return sessions_dir / f"{session_id}-session.json"


def events_path(sessions_dir: Path, session_id: str) -> Path:
    return sessions_dir / f"{session_id}-events.jsonl"


def summarize(doc: Doc) -> dict[str, Any]:
    """Counts by status, the total and the cost so far (USD) of a session document."""
    counts = Counter(job["status"] for job in doc["jobs"])
    summary: dict[str, Any] = {"total": len(doc["jobs"])}
    summary.update({status: counts.get(status, 0) for status in STATUSES})
    summary["cost_usd"] = round(sum(j["cost_usd"] or 0.0 for j in doc["jobs"]), 6)
    return summary


def apply(doc: Doc, index: Mapping[str, dict[str, Any]], event: Mapping[str, Any]) -> None:
    """Fold one change event into a session document (pure apart from mutating ``doc``)."""
    if "job" in event:
        job = index[event["job"]]
        job.update(event.get("set", {}))
        if "history" in event:
            job["history"].append(event["history"])
    if "session" in event:
        doc.update(event["session"])
    doc["updated"] = event["at"]


def _index(doc: Doc) -> dict[str, dict[str, Any]]:
    return {job["id"]: job for job in doc["jobs"]}


def _parse_lines(data: bytes, path: Path) -> Iterator[dict[str, Any]]:
    # A line without its newline is a write the process did not finish: not part of the log.
    for number, line in enumerate(data.split(b"\n")[:-1], 1):
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"{path}: line {number} is not valid JSON; the event log is damaged "
                "(it is left as it is)"
            ) from exc


def load(sessions_dir: Path, session_id: str) -> Doc:
    """The current state of a session: the snapshot plus every change logged after it.

    Raises InputError if the session does not exist, was written by a newer imagegen, or
    neither the snapshot nor the event log can be read. Never writes.
    """
    doc, _offset = _load(sessions_dir, session_id)
    return doc


def _load(sessions_dir: Path, session_id: str) -> tuple[Doc, int]:
    snap, log = snapshot_path(sessions_dir, session_id), events_path(sessions_dir, session_id)
    if not snap.exists() and not log.exists():
        raise InputError(f"no session {session_id!r} in {sessions_dir}; see imagegen --status")
    doc: Doc | None = None
    if snap.exists():
        try:
            doc = orjson.loads(snap.read_bytes())
        except orjson.JSONDecodeError:
            doc = None  # rebuilt from the event log below, and the damaged file is left alone
        if doc is not None and doc.get("version", 0) > FORMAT_VERSION:
            raise InputError(
                f"{snap}: written by a newer imagegen (format {doc['version']}); upgrade imagegen"
            )
    offset = doc["journal"]["offset"] if doc else 0
    seq = doc["journal"]["seq"] if doc else -1
    data = b""
    if log.exists():
        with log.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    elif doc is None:
        raise InputError(f"{snap}: not valid JSON and no event log to rebuild it from")
    index = _index(doc) if doc else {}
    for event in _parse_lines(data, log):
        if "create" in event:
            doc = event["create"]
            index = _index(doc)
        elif doc is None:
            raise InputError(f"{log}: the first line does not create the session")
        elif event["seq"] > seq:
            apply(doc, index, event)
        seq = max(seq, event["seq"])
    if doc is None:
        raise InputError(f"{snap}: cannot be read and {log} is empty")
    doc["journal"] = {"seq": seq, "offset": offset + len(data) - len(data.rsplit(b"\n", 1)[-1])}
    if offset == 0 and snap.exists():
        doc["journal"]["rebuilt"] = True
    doc["summary"] = summarize(doc)
    return doc, doc["journal"]["offset"]


def list_sessions(sessions_dir: Path) -> list[str]:
    """Session ids in the folder, oldest first."""
    if not sessions_dir.is_dir():
        return []
    ids = {p.name.removesuffix("-events.jsonl") for p in sessions_dir.glob("*-events.jsonl")}
    ids |= {p.name.removesuffix("-session.json") for p in sessions_dir.glob("*-session.json")}
    return sorted(ids)


def session_lock(sessions_dir: Path, session_id: str) -> filelock.FileLock:
    """The session's OS-level lock (``S.lock``); the OS drops it when its holder dies.

    filelock shares one lock object per path within a process, so taking it again is counted.
    """
    return filelock.FileLock(str(sessions_dir / f"{session_id}.lock"))


def _acquire(lock: filelock.FileLock, session_id: str) -> None:
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout as exc:
        raise SessionLocked(
            f"session {session_id} is being run by another process "
            f"(lock {lock.lock_file}); wait for it or use --status {session_id}"
        ) from exc
