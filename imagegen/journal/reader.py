"""Reading a session: the snapshot, then every change the event log holds after it.

No writes, no lock, no event loop: this is what ``--status`` and the contact sheet load, so it
stays light to import. The file format is described in :mod:`imagegen.journal`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from ..errors import InputError
from ..model import SessionState
from .codec import decode_event, decode_session, jobs_digest, where


def snapshot_path(sessions_dir: Path, session_id: str) -> Path:
    return sessions_dir / f"{session_id}-session.json"


def events_path(sessions_dir: Path, session_id: str) -> Path:
    return sessions_dir / f"{session_id}-events.jsonl"


def now_iso() -> str:
    """Local time, seconds precision, as in the seed ("2025-01-15T14:30:00")."""
    return datetime.now().isoformat(timespec="seconds")


@dataclass(slots=True)
class Loaded:
    """A session as read: its state, where the log's last whole line ends (bytes), whether
    the snapshot could not be read and the state was rebuilt from the log alone, and the
    snapshot's size and the log bytes after it (bytes; what decides when the writer next
    rewrites it)."""

    state: SessionState
    offset: int
    rebuilt: bool
    snapshot_bytes: int = 0
    logged_since_snapshot: int = 0


def _recovery_hint(log: Path) -> str:
    return (
        f"restore the file, or move it away to rebuild the session from {log.name} "
        "(the event log holds every change)"
    )


def _lines(data: bytes, start: int) -> Iterator[tuple[int, bytes]]:
    """(line number from ``start``, line) for each whole line; a last line without its
    newline is a write the process did not finish and is not part of the log."""
    yield from enumerate(data.split(b"\n")[:-1], start)


def read(sessions_dir: Path, session_id: str) -> Loaded:
    """The current state of a session: the snapshot plus every change logged after it.

    Raises InputError if the session does not exist, was written by a newer imagegen, was
    edited by hand into something inconsistent (the message names the file, job and field),
    or neither the snapshot nor the event log can be read. Never writes.
    """
    with _collector_paused():
        return _read(sessions_dir, session_id)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a session is decoded: the JSON trees and records
    hold no cycles, and its passes over ~10 objects per job cost a third of a 10,000-job load
    (the benchmark's --status row)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


#: What a session id can be: the start time ("2025-01-15-14-30-00", "-2" for a second one in
#: the same second) or any name of the same characters; never a path.
_SESSION_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")


def check_session_id(sessions_dir: Path, session_id: str) -> None:
    """InputError unless ``session_id`` could name a session (a typo, a path, 300 characters)."""
    if not _SESSION_ID.fullmatch(session_id):
        raise InputError(
            f"no session {str(session_id)[:70]!r} in {sessions_dir}: a session id is its start "
            "time, like 2025-01-15-14-30-00; see imagegen --status"
        )


def _read(sessions_dir: Path, session_id: str) -> Loaded:
    check_session_id(sessions_dir, session_id)
    snap, log = snapshot_path(sessions_dir, session_id), events_path(sessions_dir, session_id)
    try:
        has_snap, has_log = snap.exists(), log.exists()
    except OSError as exc:
        raise InputError(
            f"cannot read the sessions folder {sessions_dir}: {exc.strerror or exc}; check "
            "--sessions-dir"
        ) from exc
    if not has_snap and not has_log:
        raise InputError(f"no session {session_id!r} in {sessions_dir}; see imagegen --status")
    state: SessionState | None = None
    offset = 0
    digest = None
    snapshot_bytes = 0
    if has_snap:
        try:
            text = snap.read_bytes()
            snapshot_bytes = len(text)
            raw = orjson.loads(text)
        except orjson.JSONDecodeError:
            raw = None  # rebuilt from the event log below; the damaged file is left alone
        except OSError as exc:
            raise InputError(f"{snap}: cannot be read ({exc.strerror})") from exc
        if raw is not None:
            state = decode_session(raw, snap, _recovery_hint(log))
            journal = raw.get("journal") if isinstance(raw, dict) else None
            offset = int(journal.get("offset", 0)) if isinstance(journal, dict) else 0
            digest = journal.get("jobs") if isinstance(journal, dict) else None
    if state is None and not has_log:
        raise InputError(f"{snap}: not valid JSON and no event log to rebuild it from")
    data = b""
    if has_log:
        try:
            with log.open("rb") as fh:
                # The digest the writer stored vouches for the job list; without it (an older
                # snapshot) or when it differs (a hand edit), compare with the create line.
                if state is not None and offset and digest != jobs_digest(state.jobs):
                    _check_same_jobs(fh, state, snap, log)
                fh.seek(offset)
                data = fh.read()
        except OSError as exc:
            raise InputError(f"{log}: cannot be read ({exc.strerror})") from exc
    rebuilt = state is None
    log_where = where(log, "the event log is damaged; it is left as it is")
    for number, line in _lines(data, 1):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InputError(
                f"{log}: line {number} is not valid JSON; the event log is damaged "
                "(it is left as it is)"
            ) from exc
        if isinstance(obj, dict) and "create" in obj:
            state = decode_session(obj["create"], log, "the event log is damaged")
            continue
        if state is None:
            raise InputError(f"{log}: the first line does not create the session")
        event = decode_event(obj, log_where)
        if event.seq <= state.seq:
            continue
        try:
            state.apply(event)
        except KeyError:
            raise InputError(
                f"{log}: event {event.seq} changes job {getattr(event, 'job_id', '?')}, which "
                f"is not in {snap.name} (jobs removed by hand?); {_recovery_hint(log)}"
            ) from None
    if state is None:
        raise InputError(f"{snap}: cannot be read and {log} is empty")
    end = offset + len(data) - len(data.rsplit(b"\n", 1)[-1])
    if rebuilt:
        return Loaded(state, end, rebuilt)
    return Loaded(state, end, rebuilt, snapshot_bytes, end - offset)


def _check_same_jobs(fh: object, state: SessionState, snap: Path, log: Path) -> None:
    """The snapshot lists the jobs the session was created with (a hand edit can drop some)."""
    import io

    assert isinstance(fh, io.BufferedReader)
    first = fh.readline()
    if not first.endswith(b"\n"):
        return
    try:
        created = orjson.loads(first).get("create", {}).get("jobs", [])
        ids = [j.get("id") for j in created if isinstance(j, dict)]
    except (orjson.JSONDecodeError, AttributeError):
        return
    if ids and ids != list(state.jobs):
        missing = [i for i in ids if i not in state.jobs]
        planned = set(ids)
        extra = [i for i in state.jobs if i not in planned]
        if not missing and not extra:
            return  # the same jobs in another order: harmless
        what = (
            f"job {missing[0]} is missing from it" if missing else f"job {extra[0]} was not planned"
        )
        raise InputError(
            f"{snap}: {what} (the session was created with {len(ids)} jobs, "
            f"it lists {len(state.jobs)}); {_recovery_hint(log)}"
        )


def load(sessions_dir: Path, session_id: str) -> SessionState:
    """The current state of a session (see :func:`read`)."""
    return read(sessions_dir, session_id).state


def list_sessions(sessions_dir: Path) -> list[str]:
    """Session ids in the folder, oldest first; InputError if the folder cannot be read."""
    try:
        if not sessions_dir.is_dir():
            return []
    except OSError as exc:
        raise InputError(
            f"cannot read the sessions folder {sessions_dir}: {exc.strerror or exc}; check "
            "--sessions-dir"
        ) from exc
    ids = {p.name.removesuffix("-events.jsonl") for p in sessions_dir.glob("*-events.jsonl")}
    ids |= {p.name.removesuffix("-session.json") for p in sessions_dir.glob("*-session.json")}
    return sorted(ids)
