"""The session journal: an append-only event log beside a JSON snapshot, like SQLite's WAL.

Files in the sessions folder, for session id ``S`` (seed 003, "Session Tracking"):

- ``S-events.jsonl``: one JSON object per line. Line 1 creates the session (config and every
  planned job); each later line is one change (``seq``, ``at``, ``job``, ``set`` fields,
  an optional ``history`` entry) or a session change (``session``). Appends are batched by a
  single writer task and flushed (and fsynced) before :meth:`Journal.record` returns, so a status
  change is durable before the step that depends on it.
- ``S-session.json``: the whole session in the seed's schema (``session_id``, ``started``,
  ``config``, ``jobs[]``, ``summary``) plus ``journal.seq`` / ``journal.offset``, the last
  change it includes and where the log continues. It is rewritten atomically (temp file, fsync,
  rename) when the log has grown by as many bytes as the snapshot holds (so each change costs at
  most twice its own bytes, whatever the session's size), after 0.5 s while the snapshot is
  under 1 MB (small sessions stay fresh for ``jq``), and on close. It is always valid JSON;
  a large session's snapshot can lag the log, which :func:`load` and ``--status`` fold in.
- ``S.lock``: an OS-level lock (filelock) held while a process runs the session.

Readers (:func:`load`) take the snapshot and replay the log from its offset, so they see every
change; a corrupt or missing snapshot is rebuilt from the log alone.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream

from .errors import InputError, unwrap_group
from .files import write_atomic
from .sessionfiles import (
    FORMAT_VERSION,
    STATUSES,
    Doc,
    _acquire,
    _index,
    _load,
    apply,
    events_path,
    list_sessions,
    load,
    now_iso,
    session_lock,
    snapshot_path,
    summarize,
)

__all__ = [
    "FORMAT_VERSION",
    "STATUSES",
    "Journal",
    "apply",
    "create",
    "events_path",
    "list_sessions",
    "load",
    "new_job_entry",
    "new_session_id",
    "now_iso",
    "open_session",
    "running",
    "session_lock",
    "snapshot_path",
    "summarize",
]

if TYPE_CHECKING:  # the planner pulls in PIL and YAML, which --status does not need
    from .planner import Job

_SNAPSHOT_MIN_DELAY = 0.5  # seconds
# Below this size the snapshot is also refreshed on time, so jq on a small session is never more
# than ~0.5 s behind; above it only the bytes rule applies, which keeps the bytes written per
# change independent of the session's size (the benchmark's "journal bytes per status change").
_SNAPSHOT_FRESH_BYTES = 1_000_000


def new_job_entry(job: Job) -> dict[str, Any]:
    """A planned job as it appears in ``jobs[]`` before its first attempt."""
    entry = asdict(job)
    entry.update(
        status="pending",
        attempts=0,
        output=None,
        error=None,
        started=None,
        completed=None,
        finish_reason=None,
        usage=None,
        cost_usd=None,
        image=None,
        history=[],
    )
    return entry


def new_session_id(sessions_dir: Path) -> str:
    """A start timestamp as in the seed ("2025-01-15-14-30-00"), suffixed -2, -3 if taken."""
    base = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    for n in range(1, 1000):
        candidate = base if n == 1 else f"{base}-{n}"
        if not events_path(sessions_dir, candidate).exists():
            return candidate
    raise InputError(f"{sessions_dir}: too many sessions started this second")


class Journal:
    """A session open for writing by this process. Use :func:`create` or :func:`open_session`.

    ``doc`` is the live session document (the snapshot's content); change it only through
    :meth:`record` and :meth:`record_session`.
    """

    def __init__(
        self,
        sessions_dir: Path,
        doc: Doc,
        offset: int,
        *,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions_dir = sessions_dir
        self.doc = doc
        self.session_id: str = doc["session_id"]
        self.fsync = fsync
        self._clock = clock
        self._index = _index(doc)
        self._counts = Counter(job["status"] for job in doc["jobs"])
        self._seq: int = doc["journal"]["seq"]
        self._offset = offset
        self._snapshot_bytes = 0
        self._logged_since_snapshot = 0
        self._snapshot_at = clock()
        self._dirty = False
        self.bytes_written = 0
        self.write_seconds = 0.0
        self._send: anyio.abc.ObjectSendStream[tuple[bytes, anyio.Event]] | None = None
        self._lock = session_lock(sessions_dir, self.session_id)

    @property
    def snapshot_path(self) -> Path:
        return snapshot_path(self.sessions_dir, self.session_id)

    @property
    def events_path(self) -> Path:
        return events_path(self.sessions_dir, self.session_id)

    def job(self, job_id: str) -> dict[str, Any]:
        """The live journal entry of a job (read only)."""
        return self._index[job_id]

    def counts(self) -> Counter[str]:
        """Jobs per status, kept up to date on every change (no scan)."""
        return self._counts

    def acquire(self) -> None:
        """Take the session's OS lock; raises SessionLocked if another process holds it."""
        _acquire(self._lock, self.session_id)

    async def record(
        self, job_id: str, history: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        """Set ``fields`` on a job (and append a history entry); returns once it is on disk."""
        job = self._index[job_id]
        if "status" in fields and fields["status"] != job["status"]:
            self._counts[job["status"]] -= 1
            self._counts[fields["status"]] += 1
        event: dict[str, Any] = {"job": job_id, "set": fields}
        if history is not None:
            event["history"] = history
        await self._log(event)

    async def record_session(self, **fields: Any) -> None:
        """Set session-level fields (``state``, ``stop_reason``, ``children``, ...)."""
        await self._log({"session": fields})

    async def _log(self, event: dict[str, Any]) -> None:
        self._seq += 1
        event = {"seq": self._seq, "at": now_iso(), **event}
        apply(self.doc, self._index, event)
        self.doc["journal"]["seq"] = self._seq
        self._dirty = True
        if self._send is None:
            raise RuntimeError("the journal's writer is not running (use journal.running())")
        done = anyio.Event()
        await self._send.send((orjson.dumps(event) + b"\n", done))
        await done.wait()

    async def run_writer(
        self, receive: MemoryObjectReceiveStream[tuple[bytes, anyio.Event]]
    ) -> None:
        """The single writer: group-commits queued events, then snapshots when due."""
        async with receive:
            while True:
                delay = self._snapshot_delay() if self._dirty else None
                batch: list[tuple[bytes, anyio.Event]] = []
                # Only the wait for work is under the snapshot deadline: a batch once taken is
                # always written and its waiters released.
                with anyio.move_on_after(delay if delay is not None else float("inf")):
                    try:
                        batch.append(await receive.receive())
                    except anyio.EndOfStream:
                        break
                if batch:
                    while True:
                        try:
                            batch.append(receive.receive_nowait())
                        except (anyio.WouldBlock, anyio.EndOfStream):
                            break
                    await self._append(b"".join(line for line, _ in batch))
                    for _, done in batch:
                        done.set()
                if self._dirty and self._snapshot_delay() == 0:
                    await self.write_snapshot()
        await self.write_snapshot()

    def _snapshot_delay(self) -> float | None:
        if self._logged_since_snapshot >= self._snapshot_bytes:
            return 0.0
        if self._snapshot_bytes > _SNAPSHOT_FRESH_BYTES:
            return None
        return max(0.0, self._snapshot_at + _SNAPSHOT_MIN_DELAY - self._clock())

    async def _append(self, data: bytes) -> None:
        started = time.perf_counter()
        await anyio.to_thread.run_sync(self._append_sync, data)
        self.write_seconds += time.perf_counter() - started
        self._offset += len(data)
        self._logged_since_snapshot += len(data)
        self.bytes_written += len(data)

    def _append_sync(self, data: bytes) -> None:
        with self.events_path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            if self.fsync:
                os.fsync(fh.fileno())

    async def write_snapshot(self) -> None:
        """Rewrite the snapshot atomically from the live document."""
        self.doc["journal"]["offset"] = self._offset
        self.doc["summary"] = summarize(self.doc)
        data = orjson.dumps(self.doc, option=orjson.OPT_INDENT_2)
        started = time.perf_counter()
        await anyio.to_thread.run_sync(write_atomic, self.snapshot_path, data)
        self.write_seconds += time.perf_counter() - started
        self.bytes_written += len(data)
        self._snapshot_bytes = len(data)
        self._logged_since_snapshot = 0
        self._snapshot_at = self._clock()
        self._dirty = False

    def release(self) -> None:
        """Release the session's OS lock (every acquire, however often taken)."""
        self._lock.release(force=True)


@asynccontextmanager
async def running(journal: Journal) -> AsyncIterator[Journal]:
    """Hold the session's lock and run its writer for the duration of the block."""
    journal.acquire()
    try:
        send, receive = anyio.create_memory_object_stream[tuple[bytes, anyio.Event]](1024)
        with unwrap_group():
            async with anyio.create_task_group() as tg:
                tg.start_soon(journal.run_writer, receive)
                journal._send = send
                try:
                    yield journal
                finally:
                    journal._send = None
                    send.close()
    finally:
        journal.release()


def create(
    sessions_dir: Path,
    config: dict[str, Any],
    jobs: list[Job],
    *,
    fsync: bool = True,
    parent: str | None = None,
) -> Journal:
    """Start a new session: write its first event log line and its first snapshot.

    Raises OSError if the sessions folder cannot be written.
    """
    sessions_dir.mkdir(parents=True, exist_ok=True)
    session_id = new_session_id(sessions_dir)
    doc: Doc = {
        "version": FORMAT_VERSION,
        "session_id": session_id,
        "started": now_iso(),
        "updated": now_iso(),
        "state": "new",
        "stop_reason": None,
        "parent": parent,
        "children": [],
        "config": config,
        "jobs": [new_job_entry(job) for job in jobs],
    }
    line = orjson.dumps({"seq": 0, "at": doc["started"], "create": doc}) + b"\n"
    log = events_path(sessions_dir, session_id)
    with log.open("xb") as fh:  # "x": two starts in one second never share a log
        fh.write(line)
        fh.flush()
        if fsync:
            os.fsync(fh.fileno())
    doc["journal"] = {"seq": 0, "offset": len(line)}
    doc["summary"] = summarize(doc)
    write_atomic(
        snapshot_path(sessions_dir, session_id), orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    )
    return Journal(sessions_dir, doc, len(line), fsync=fsync)


def open_session(sessions_dir: Path, session_id: str, *, fsync: bool = True) -> Journal:
    """Open an existing session for writing (resume, retry). Raises InputError if unreadable.

    A log whose last line was cut off by a crash is trimmed back to its last whole line. A
    snapshot that cannot be read is renamed ``*.damaged-TIMESTAMP`` (never overwritten) and the
    session continues from the log; ``doc["journal"]["damaged_snapshot"]`` names the kept file.
    The session's lock is taken first (SessionLocked if another process runs it) and held
    until :meth:`Journal.release`: only the lock holder may trim or append to the log.
    """
    if (
        not snapshot_path(sessions_dir, session_id).exists()
        and not events_path(sessions_dir, session_id).exists()
    ):
        raise InputError(f"no session {session_id!r} in {sessions_dir}; see imagegen --status")
    lock = session_lock(sessions_dir, session_id)
    _acquire(lock, session_id)
    try:
        return _open_locked(sessions_dir, session_id, fsync)
    except BaseException:
        lock.release(force=True)
        raise


def _open_locked(sessions_dir: Path, session_id: str, fsync: bool) -> Journal:
    doc, offset = _load(sessions_dir, session_id)
    snap = snapshot_path(sessions_dir, session_id)
    if doc["journal"].get("rebuilt") and snap.exists():
        # Keep the damaged snapshot for the user; the log holds everything it held.
        kept = snap.with_name(f"{snap.name}.damaged-{datetime.now():%Y%m%d%H%M%S}")
        snap.rename(kept)
        doc["journal"]["damaged_snapshot"] = str(kept)
    log = events_path(sessions_dir, session_id)
    if log.exists() and log.stat().st_size > offset:
        with log.open("r+b") as fh:
            fh.truncate(offset)
    return Journal(sessions_dir, doc, offset, fsync=fsync)
