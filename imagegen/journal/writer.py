"""Writing a session: the single writer of its event log and snapshot, and its lock's owner.

A :class:`Journal` is made by :meth:`Journal.create` (a new session) or :meth:`Journal.open`
(resume, retry); either takes the session's OS lock, and the journal holds it until
:meth:`Journal.close`. Changes go through :meth:`Journal.update` while :meth:`Journal.writing`
runs the writer task, which group-commits queued lines (flush, fsync) before releasing their
callers, and rewrites the snapshot when it is due (see :mod:`imagegen.journal`).

A log that cannot be written (a full disk) ends the run: every waiting and later change raises
:class:`~imagegen.errors.JournalError` (exit 3), and the session resumes from what is on disk.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ..errors import InputError, JournalError, SessionLocked
from ..files import fsync_dir, write_atomic
from ..model import (
    Attempt,
    BatchChange,
    JobEvent,
    JobState,
    JobUpdate,
    SessionEvent,
    SessionState,
    SessionUpdate,
)
from ..secrets import redact
from .codec import (
    FORMAT_VERSION,
    encode_header,
    encode_job_event,
    encode_plan,
    encode_progress,
    encode_session_event,
    jobs_digest,
)
from .lock import SessionLock, lock_path
from .reader import check_session_id, events_path, now_iso, read, snapshot_path

_SNAPSHOT_MIN_DELAY = 0.5  # seconds
# Below this size the snapshot is also refreshed on time, so jq on a small session is never more
# than ~0.5 s behind; above it only the bytes rule applies, which keeps the bytes written per
# change independent of the session's size (the benchmark's "journal bytes per status change").
_SNAPSHOT_FRESH_BYTES = 1_000_000

# Seconds before a snapshot that could not be written (a full disk) is tried again.
_SNAPSHOT_RETRY = 1.0

_Line = tuple[bytes, anyio.Event]


def _drain(
    receive: MemoryObjectReceiveStream[_Line], ended: bool = False
) -> tuple[list[_Line], bool]:
    """The lines already queued (no wait), and whether the stream has ended."""
    batch: list[_Line] = []
    while not ended:
        try:
            batch.append(receive.receive_nowait())
        except anyio.WouldBlock:
            break
        except anyio.EndOfStream:
            ended = True
    return batch, ended


def _signature(sessions_dir: Path, session_id: str) -> tuple[tuple[int, int, int] | None, ...]:
    """Inode, size and modification time (ns) of the snapshot and the event log (None where
    missing): equal before and after taking the lock means no one wrote the session between."""
    out: list[tuple[int, int, int] | None] = []
    for path in (snapshot_path(sessions_dir, session_id), events_path(sessions_dir, session_id)):
        try:
            st = path.stat()
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def new_session_id(sessions_dir: Path) -> str:
    """A start timestamp as in the seed ("2025-01-15-14-30-00"), suffixed -2, -3 if taken."""
    base = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    for n in range(1, 1000):
        candidate = base if n == 1 else f"{base}-{n}"
        if not (
            events_path(sessions_dir, candidate).exists()
            or snapshot_path(sessions_dir, candidate).exists()
            or lock_path(sessions_dir, candidate).exists()
        ):
            return candidate
    raise InputError(f"{sessions_dir}: too many sessions started this second")


class Journal:
    """A session open for writing by this process; it holds the session's lock until closed.

    ``state`` is the live session; change it only through :meth:`update` and
    :meth:`update_session`, inside :meth:`writing`.
    """

    def __init__(
        self,
        sessions_dir: Path,
        state: SessionState,
        offset: int,
        lock: SessionLock,
        *,
        fsync: bool = True,
        clock: Callable[[], float] = time.monotonic,
        damaged_snapshot: Path | None = None,
        snapshot_bytes: int = 0,
        logged_since_snapshot: int = 0,
    ) -> None:
        self.sessions_dir = sessions_dir
        self.state = state
        self.session_id = state.session_id
        self.fsync = fsync
        self.damaged_snapshot = damaged_snapshot
        self._lock = lock
        self._clock = clock
        self._offset = offset
        # Each job's plan as the snapshot stores it, encoded at the first snapshot: a resume
        # plans its run without it (jobs never change after planning).
        self._texts: dict[str, str] = {}
        self._plans: dict[str, dict[str, Any]] | None = None
        self._ids_digest = jobs_digest(state.jobs)
        # The snapshot on disk (0: none yet, rewrite at the first change) and the log after it.
        self._snapshot_bytes = snapshot_bytes
        self._logged_since_snapshot = logged_since_snapshot
        self._snapshot_at = clock()
        self._dirty = False
        self._snapshot_retry_at: float | None = None
        self._send: MemoryObjectSendStream[_Line] | None = None
        self._failure: JournalError | None = None
        self.bytes_written = 0
        self.write_seconds = 0.0

    # -- opening and closing ---------------------------------------------------------------

    @classmethod
    def create(
        cls,
        sessions_dir: Path,
        config: dict[str, Any],
        jobs: Iterable[JobState],
        *,
        parent: str | None = None,
        fsync: bool = True,
    ) -> Journal:
        """Start a new session: take its lock, write its first log line and first snapshot.

        Raises OSError if the sessions folder cannot be written (nothing is left behind).
        """
        sessions_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(50):
            session_id = new_session_id(sessions_dir)
            lock = SessionLock(sessions_dir, session_id)
            try:
                lock.acquire()
            except SessionLocked:
                continue  # another process is creating this id right now
            log = events_path(sessions_dir, session_id)
            if not log.exists():
                break
            lock.release()  # another process took this id between the check and the lock
        else:
            raise InputError(f"{sessions_dir}: too many sessions started this second")
        started = now_iso()
        state = SessionState(
            version=FORMAT_VERSION,
            session_id=session_id,
            started=started,
            updated=started,
            config=config,
            jobs={js.id: js for js in jobs},
            parent=parent,
        )
        journal = cls(sessions_dir, state, 0, lock, fsync=fsync)
        line = orjson.dumps({"seq": 0, "at": started, "create": journal._document()}) + b"\n"
        try:
            with log.open("xb") as fh:
                fh.write(line)
                fh.flush()
                if fsync:
                    os.fsync(fh.fileno())
            if fsync:
                fsync_dir(sessions_dir)
            journal._offset = len(line)
            journal._snapshot_bytes = journal._write_snapshot_sync()
        except BaseException:
            log.unlink(missing_ok=True)
            snapshot_path(sessions_dir, session_id).unlink(missing_ok=True)
            lock.release(remove=True)
            raise
        return journal

    @classmethod
    def open(cls, sessions_dir: Path, session_id: str, *, fsync: bool = True) -> Journal:
        """Open an existing session for writing (resume, retry); takes its lock.

        The session is read before the lock is taken, so an unreadable one is refused with
        InputError and leaves nothing behind; SessionLocked if another process runs it. Under
        the lock: a log line cut off by a crash is trimmed, a snapshot that cannot be read is
        renamed ``*.damaged-TIMESTAMP`` (never overwritten; :attr:`damaged_snapshot`), and the
        temporary files of snapshot writes a crash interrupted are removed.
        """
        check_session_id(sessions_dir, session_id)
        files = _signature(sessions_dir, session_id)
        loaded = read(sessions_dir, session_id)  # refuse an unreadable session before locking
        lock = SessionLock(sessions_dir, session_id)
        lock.acquire()
        try:
            if _signature(sessions_dir, session_id) != files:
                loaded = read(sessions_dir, session_id)  # another process wrote it meanwhile
            snap = snapshot_path(sessions_dir, session_id)
            damaged = None
            if loaded.rebuilt and snap.exists():
                damaged = snap.with_name(f"{snap.name}.damaged-{datetime.now():%Y%m%d%H%M%S}")
                snap.rename(damaged)
            log = events_path(sessions_dir, session_id)
            if log.exists() and log.stat().st_size > loaded.offset:
                with log.open("r+b") as fh:
                    fh.truncate(loaded.offset)
            for tmp in sessions_dir.glob(f".{snap.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
            return cls(
                sessions_dir,
                loaded.state,
                loaded.offset,
                lock,
                fsync=fsync,
                damaged_snapshot=damaged,
                snapshot_bytes=loaded.snapshot_bytes,
                logged_since_snapshot=loaded.logged_since_snapshot,
            )
        except BaseException:
            lock.release()
            raise

    def close(self) -> None:
        """Release the session's lock (idempotent)."""
        self._lock.release()

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------

    @property
    def snapshot_path(self) -> Path:
        return snapshot_path(self.sessions_dir, self.session_id)

    @property
    def events_path(self) -> Path:
        return events_path(self.sessions_dir, self.session_id)

    def job(self, job_id: str) -> JobState:
        """The live state of a job."""
        return self.state.jobs[job_id]

    # -- changing ----------------------------------------------------------------------------

    async def update(
        self, job_id: str, update: JobUpdate, attempt: Attempt | None = None
    ) -> JobState:
        """Apply ``update`` to a job (and add ``attempt`` to its history); returns the new
        state once the change is on disk. Raises KeyError for a job not in the session, and
        JournalError if the log cannot be written."""
        (state,) = await self.update_many([(job_id, update, attempt)])
        return state

    async def update_many(
        self, changes: Iterable[tuple[str, JobUpdate, Attempt | None]]
    ) -> list[JobState]:
        """Apply several job changes as consecutive events written in one append (one flush
        and fsync for all: a batch's results fold in without a disk round trip each).
        Returns the new states, in order, once every line is on disk; raises as
        :meth:`update`, before applying any change when one names an unknown job."""
        changes = list(changes)
        unknown = next((job_id for job_id, _, _ in changes if job_id not in self.state.jobs), None)
        if unknown is not None:
            raise KeyError(unknown)
        lines, states = [], []
        for job_id, update, attempt in changes:
            if isinstance(update.error, str):  # the journal never holds a key, whoever wrote it
                update = replace(update, error=redact(update.error))
            if attempt is not None and attempt.error:
                attempt = replace(attempt, error=redact(attempt.error))
            event = JobEvent(self.state.seq + 1, now_iso(), job_id, update, attempt)
            self.state.apply(event)
            lines.append(orjson.dumps(encode_job_event(event)) + b"\n")
            states.append(self.state.jobs[job_id])
        if lines:
            await self._log(b"".join(lines))
        return states

    async def update_session(self, update: SessionUpdate) -> None:
        """Apply a session-level change; returns once it is on disk."""
        if isinstance(update.stop_reason, str):
            update = replace(update, stop_reason=redact(update.stop_reason))
        if isinstance(update.batch, BatchChange) and isinstance(update.batch.error, str):
            update = replace(update, batch=replace(update.batch, error=redact(update.batch.error)))
        event = SessionEvent(self.state.seq + 1, now_iso(), update)
        self.state.apply(event)
        await self._log(orjson.dumps(encode_session_event(event)) + b"\n")

    async def _log(self, line: bytes) -> None:
        self._dirty = True
        if self._failure is not None:
            raise self._failure
        if self._send is None:
            raise RuntimeError("the journal's writer is not running (use journal.writing())")
        done = anyio.Event()
        # Queued in the same step as the caller applied the event (no await between): the
        # writer never sees a state whose event is neither written nor queued, so a snapshot
        # taken with the queue empty claims nothing the log lacks.
        self._send.send_nowait((line, done))
        await done.wait()
        if self._failure is not None:
            raise self._failure

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Journal]:
        """Run the writer for the duration of the block; the snapshot is written at the end."""
        # Unbounded: each caller waits for its line before sending another, so the queue holds
        # at most one line (or one update_many append) per task that writes.
        send, receive = anyio.create_memory_object_stream[_Line](math.inf)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._run_writer, receive)
            self._send = send
            try:
                yield self
            finally:
                self._send = None
                send.close()

    async def _run_writer(self, receive: MemoryObjectReceiveStream[_Line]) -> None:
        """Group-commit queued lines, then snapshot when due; never raises on a full disk."""
        async with receive:
            ended = False
            while not ended:
                batch, ended = _drain(receive)
                if not batch and not ended:
                    delay = self._snapshot_delay() if self._dirty else None
                    # Only the wait for work is under the snapshot deadline: a batch once
                    # taken is always written and its waiters released.
                    with anyio.move_on_after(delay if delay is not None else float("inf")):
                        try:
                            batch.append(await receive.receive())
                        except anyio.EndOfStream:
                            ended = True
                    more, ended = _drain(receive, ended)
                    batch += more
                if batch:
                    await self._append(b"".join(line for line, _ in batch))
                    for _, done in batch:
                        done.set()
                # Only with nothing queued: the snapshot is the state of the log as written (its
                # seq and offset agree), so a kill after it never leaves events the log lacks.
                idle = receive.statistics().current_buffer_used == 0
                if idle and self._dirty and self._snapshot_delay() == 0:
                    await self.write_snapshot()
        await self.write_snapshot()

    def _snapshot_delay(self) -> float | None:
        if self._failure is not None:
            return None
        if self._snapshot_retry_at is not None:  # the last write failed: not in a loop
            return max(0.0, self._snapshot_retry_at - self._clock())
        if self._logged_since_snapshot >= self._snapshot_bytes:
            return 0.0
        if self._snapshot_bytes > _SNAPSHOT_FRESH_BYTES:
            return None
        return max(0.0, self._snapshot_at + _SNAPSHOT_MIN_DELAY - self._clock())

    async def _append(self, data: bytes) -> None:
        if self._failure is not None:
            return
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(self._append_sync, data)
        except OSError as exc:
            self._failure = JournalError(
                f"cannot write the journal {self.events_path}: {exc.strerror or exc}; free "
                f"space or fix permissions, then continue with --resume {self.session_id}"
            )
            return
        self.write_seconds += time.perf_counter() - started
        self._offset += len(data)
        self._logged_since_snapshot += len(data)
        self.bytes_written += len(data)

    def _append_sync(self, data: bytes) -> None:
        with self.events_path.open("ab") as fh:
            try:
                fh.write(data)
                fh.flush()
                if self.fsync:
                    os.fsync(fh.fileno())
            except OSError:
                # A partial line must not stay: the next open would trim it, but a later append
                # in this process would glue onto it.
                fh.truncate(self._offset)
                raise

    # -- the snapshot ------------------------------------------------------------------------

    def _document(self) -> dict[str, Any]:
        if self._plans is None:
            self._plans = {
                jid: encode_plan(js.job, self._texts) for jid, js in self.state.jobs.items()
            }
        plans = self._plans
        doc = encode_header(self.state)
        doc["texts"] = self._texts
        doc["jobs"] = [plans[jid] | encode_progress(js) for jid, js in self.state.jobs.items()]
        doc["summary"] = self.state.summary().as_dict()
        return doc

    def _snapshot_bytes_now(self) -> bytes:
        doc = self._document()
        doc["journal"] = {"seq": self.state.seq, "offset": self._offset, "jobs": self._ids_digest}
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)

    def _write_snapshot_sync(self) -> int:
        data = self._snapshot_bytes_now()
        write_atomic(self.snapshot_path, data, fsync=self.fsync)
        return len(data)

    async def write_snapshot(self) -> None:
        """Rewrite the snapshot atomically from the live state. A failure (a full disk) is
        not fatal: the log holds every change and readers fold it in."""
        if self._failure is not None:
            return
        data = self._snapshot_bytes_now()
        started = time.perf_counter()
        try:
            await anyio.to_thread.run_sync(
                lambda: write_atomic(self.snapshot_path, data, fsync=self.fsync)
            )
        except OSError:
            self._snapshot_retry_at = self._clock() + _SNAPSHOT_RETRY
            return
        self._snapshot_retry_at = None
        self.write_seconds += time.perf_counter() - started
        self.bytes_written += len(data)
        self._snapshot_bytes = len(data)
        self._logged_since_snapshot = 0
        self._snapshot_at = self._clock()
        self._dirty = False
