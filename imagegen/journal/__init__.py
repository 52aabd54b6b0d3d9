"""The session journal: an append-only event log beside a JSON snapshot, like SQLite's WAL.

Files in the sessions folder, for session id ``S`` (seed 003, "Session Tracking"):

- ``S-events.jsonl``: one JSON object per line. Line 1 creates the session (``create``: the
  whole document, every planned job); each later line is one change: ``{"seq", "at", "job",
  "set": {fields}, "history": {attempt}}`` or ``{"seq", "at", "session": {fields}}``. Lines are
  appended by a single writer task and flushed (and fsynced) before the change is reported
  done, so a status change is durable before the step that depends on it.
- ``S-session.json``: the whole session in the seed's schema (``session_id``, ``started``,
  ``config``, ``jobs[]``, ``summary``) plus ``texts`` (each distinct prompt part once) and
  ``journal.seq`` / ``journal.offset`` (the last change it includes and where the log
  continues). Rewritten atomically (temp file, fsync, rename, folder fsync) when the log has
  grown by as many bytes as the snapshot holds (so each change costs at most about twice its
  own bytes, whatever the session's size), after 0.5 s while it is under 1 MB (small sessions
  stay fresh for ``jq``), and at the end of a run. A large session's snapshot can lag the log,
  which readers fold in.
- ``S.lock``: the OS lock held by the one process writing the session (:mod:`.lock`).

Parts: :mod:`.codec` (typed values <-> JSON, validation, format 1 compatibility), :mod:`.reader`
(load: snapshot + log, no writes), :mod:`.writer` (:class:`Journal`), :mod:`.lock`. The fold
itself is :meth:`imagegen.model.SessionState.apply`.
"""

from __future__ import annotations

from .codec import FORMAT_VERSION, encode_session, text_key
from .lock import current_owner, owner_alive
from .reader import Loaded, events_path, list_sessions, load, now_iso, read, snapshot_path
from .writer import Journal, new_session_id

__all__ = [
    "FORMAT_VERSION",
    "Journal",
    "Loaded",
    "current_owner",
    "encode_session",
    "events_path",
    "list_sessions",
    "load",
    "new_session_id",
    "now_iso",
    "owner_alive",
    "read",
    "snapshot_path",
    "text_key",
]
