"""``--report SESSION_ID``: a session's contact sheet, an HTML page that opens from disk.

For session ``S`` in the sessions folder it writes::

    S-report/index.html   the page (inline CSS, relative links, no network)
    S-report/thumbs/      JPEG thumbnails, made once and reused by later builds

The page links to the full images and reference images where the session left them, by paths
relative to the page, so the report folder works from disk as long as it stays beside them.

The parts: :mod:`.sheet` folds the journal into sections, rows and cards (pure), :mod:`.thumbs`
makes thumbnails with Pillow, :mod:`.page` renders HTML (pure); this module is the shell.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import sessionfiles as journal_mod
from ..errors import InputError
from ..files import write_atomic
from ..status import is_running
from .page import Gallery, Media, render_page
from .sheet import ContactSheet, build_sheet, failure_label
from .thumbs import JOB_BOX, REFERENCE_BOX, Thumb, make_thumbnails, prune_thumbnails

__all__ = ["ContactSheet", "build_sheet", "failure_label", "report_dir", "write_report"]


def report_dir(sessions_dir: Path, session_id: str) -> Path:
    """The report folder of a session: ``{sessions_dir}/{session_id}-report``."""
    return sessions_dir / f"{session_id}-report"


def write_report(sessions_dir: Path, session_id: str) -> Path:
    """Write (or rebuild) the contact sheet of a session; returns the path of its index.html.

    Run it from the working directory the session ran in: the journal records job images
    relative to it (the sessions folder's parent is tried next). Thumbnails of unchanged images
    are reused, and those no longer used are deleted. For an upgrade session whose parent
    already has a report, the parent's report is rebuilt too, so that it links to this one.

    Raises InputError if the session cannot be read (see :func:`imagegen.journal.load`) and
    OSError if the report folder cannot be written. Missing or unreadable images do not raise:
    their cells say so.
    """
    index, parent = _write(sessions_dir, session_id)
    if parent and (report_dir(sessions_dir, parent) / "index.html").exists():
        # A damaged parent journal keeps its old report: this session's is what was asked for.
        with contextlib.suppress(InputError):
            _write(sessions_dir, parent)
    return index


def _write(sessions_dir: Path, session_id: str) -> tuple[Path, str | None]:
    """Build one session's report; returns its index.html and the session's parent."""
    doc = journal_mod.load(sessions_dir, session_id)
    sheet = build_sheet(
        doc,
        state=_state(sessions_dir, doc),
        parent_doc=_load_or_none(sessions_dir, doc.get("parent")),
    )
    folder = report_dir(sessions_dir, session_id).resolve()
    related = [other for other in (doc.get("parent"), *doc.get("children", ())) if other]
    bases = (Path.cwd(), sessions_dir.resolve().parent)
    shots = {s.path: _locate(s.path, bases) for card in sheet.cards for s in card.shots}
    refs = {r: _locate(r, bases) for card in sheet.cards for r in card.references}
    thumbs = make_thumbnails(
        [(p, JOB_BOX) for p in shots.values()] + [(p, REFERENCE_BOX) for p in refs.values()],
        folder / "thumbs",
        donors=[report_dir(sessions_dir, other) / "thumbs" for other in related],
    )
    sessions = {other: _report_href(sessions_dir, other, folder) for other in related}
    gallery = Gallery(
        shots={k: _media(p, thumbs[p, JOB_BOX], folder) for k, p in shots.items()},
        references={k: _media(p, thumbs[p, REFERENCE_BOX], folder) for k, p in refs.items()},
        sessions=sessions,
    )
    index = folder / "index.html"
    write_atomic(index, render_page(sheet, gallery).encode("utf-8"))
    prune_thumbnails(folder / "thumbs", thumbs)
    return index, doc.get("parent")


def _state(sessions_dir: Path, doc: dict[str, Any]) -> str:
    # As imagegen.status.state_of, but a recorded end wins over the lock, so a report written
    # by the session's own process just before it lets go of its lock says "finished".
    state = str(doc.get("state") or "new")
    if state in ("finished", "stopped"):
        return state
    if is_running(sessions_dir, doc["session_id"]):
        return "running"
    return "interrupted" if state == "running" else state


def _load_or_none(sessions_dir: Path, session_id: str | None) -> dict[str, Any] | None:
    if not session_id:
        return None
    try:
        return journal_mod.load(sessions_dir, session_id)
    except InputError:
        return None  # only the "before" labels of an upgrade need it


def _locate(recorded: str, bases: tuple[Path, ...]) -> Path:
    """The absolute path of an image the journal recorded, relative ones against each base."""
    path = Path(recorded)
    if path.is_absolute():
        return path
    for base in bases:
        if (base / path).exists():
            return (base / path).resolve()
    return (bases[0] / path).resolve()


def _href(target: Path, folder: Path) -> str:
    """A URL for ``target`` relative to the page in ``folder`` (file: URL across drives)."""
    try:
        rel = os.path.relpath(target, folder)
    except ValueError:
        return target.as_uri()
    return quote(Path(rel).as_posix())


def _media(source: Path, thumb: Thumb, folder: Path) -> Media:
    if thumb.name is None:
        return Media(None, None, problem=thumb.problem)
    return Media(_href(source, folder), f"thumbs/{quote(thumb.name)}", thumb.width, thumb.height)


def _report_href(sessions_dir: Path, session_id: str, folder: Path) -> str | None:
    index = report_dir(sessions_dir, session_id).resolve() / "index.html"
    return _href(index, folder) if index.exists() else None
