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
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .. import journal as journal_mod
from ..errors import InputError
from ..files import write_atomic
from ..model import SessionState
from ..status import run_state
from .page import Gallery, Media, render_page
from .sheet import ContactSheet, build_sheet, failure_label
from .thumbs import (
    JOB_BOX,
    REFERENCE_BOX,
    Thumb,
    make_thumbnails,
    prune_thumbnails,
    thumbnail_for,
)

#: ``--sessions-dir``'s default (imagegen/cli/options.py), left out of the page's commands.
DEFAULT_SESSIONS = Path("sessions")

__all__ = [
    "ContactSheet",
    "build_sheet",
    "failure_label",
    "prepare_thumbnails",
    "report_dir",
    "write_report",
]


def report_dir(sessions_dir: Path, session_id: str) -> Path:
    """The report folder of a session: ``{sessions_dir}/{session_id}-report``."""
    return sessions_dir / f"{session_id}-report"


def write_report(sessions_dir: Path, session_id: str, jobs: Sequence[str] = ()) -> Path:
    """Write (or rebuild) the contact sheet of a session; returns the path of its index.html.

    Run it from the working directory the session ran in: the journal records job images
    relative to it (the sessions folder's parent is tried next). Thumbnails of unchanged images
    are reused, and those no longer used are deleted. For an upgrade session whose parent
    already has a report, the parent's report is rebuilt too, so that it links to this one.

    Raises InputError if the session cannot be read (see :func:`imagegen.journal.load`) and
    OSError if the report folder cannot be written. Missing or unreadable images do not raise:
    their cells say so.
    """
    index, parent = _write(sessions_dir, session_id, jobs)
    if parent and (report_dir(sessions_dir, parent) / "index.html").exists():
        # A damaged parent journal keeps its old report: this session's is what was asked for.
        with contextlib.suppress(InputError):
            _write(sessions_dir, parent)
    return index


def _write(
    sessions_dir: Path, session_id: str, jobs: Sequence[str] = ()
) -> tuple[Path, str | None]:
    """Build one session's report (of ``jobs`` only, when given); returns its index.html and
    the session's parent."""
    state = journal_mod.load(sessions_dir, session_id)
    if jobs:
        width = max(len(i) for i in state.jobs)
        wanted = [j.zfill(width) if j.isdigit() else j for j in jobs]
        unknown = [j for j in wanted if j not in state.jobs]
        if unknown:
            raise InputError(f"session {session_id} has no job {unknown[0]!r} (see --status)")
        state.jobs = {j: state.jobs[j] for j in state.jobs if j in set(wanted)}
        state.counts = Counter(js.status for js in state.jobs.values())
    sheet = build_sheet(
        state, run_state=run_state(state), parent=_load_or_none(sessions_dir, state.parent)
    )
    folder = report_dir(sessions_dir, session_id).resolve()
    related = [other for other in (state.parent, *state.children) if other]
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
    # The review commands run from the working directory, like the session did.
    options = () if sessions_dir == DEFAULT_SESSIONS else ("--sessions-dir", str(sessions_dir))
    page = render_page(sheet, gallery, command_options=options)
    write_atomic(index, page.encode("utf-8"))
    prune_thumbnails(folder / "thumbs", thumbs)
    return index, state.parent


def prepare_thumbnails(
    sessions_dir: Path, session_id: str, image: Path | str, references: Sequence[str] = ()
) -> None:
    """Make now the thumbnails the session's contact sheet will show for an image just saved:
    the image's own and its reference images' (those already made are only looked up), in the
    report folder's ``thumbs/``. Paths as the journal records them, relative ones to the
    working directory, as :func:`write_report` reads them.

    The runner calls it in a worker thread after each save (``Runner(saved=...)``), so that
    the report written at the end of a 1,000-image run finds every thumbnail made instead of
    decoding 1,000 images then (``python -m imagegen.bench --scenario report``). Never raises:
    a thumbnail is a cache that the report rebuilds, and nothing about it may fail a paid image.
    """
    # Broad on purpose (see above): the report makes whatever is missing here.
    with contextlib.suppress(Exception):
        folder = report_dir(sessions_dir, session_id).resolve() / "thumbs"
        bases = (Path.cwd(), sessions_dir.resolve().parent)
        thumbnail_for(_locate(str(image), bases), folder, JOB_BOX)
        for reference in references:
            thumbnail_for(_locate(reference, bases), folder, REFERENCE_BOX)


def _load_or_none(sessions_dir: Path, session_id: str | None) -> SessionState | None:
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
