"""Images an earlier session made for a still-pending item and never recorded in its spec.

A pending item whose output file already exists is one of three things:

1. an image a session made and journaled, whose spec update never happened (a crash between
   the two, a spec that did not parse at that moment, a lock held too long) and which a run
   with another selection, or ``--new``, now plans again: *adopted*, recorded without a call,
   with the provider, model, request id and cost that session journaled;
2. an image made from other prompt fields (the item was edited during the run: the result was
   reported stale) or one whose record the user cleared to ask for a new one: *regenerated*,
   the old file kept beside it as ``NAME.replaced-TIME.png``;
3. a file no session knows (the sessions folder was deleted, a file copied in by hand):
   *regenerated* the same way. We cannot tell which prompt, provider or model made it, and the
   spec must not claim provenance nobody can vouch for; the old file is kept, so nothing is
   lost but the price of one image.

Case 1 needs all of: a completed job of the ``specs`` source for the same spec file and item,
with the same prompt fingerprint and the same prompt text as planned now, whose output is this
very file, whose after-save step never succeeded (``delivery`` is neither None nor "done"),
and a file on disk that is still a whole image of the size that session journaled.
(``delivery`` "done" means the item was recorded once and the user has since cleared it: case 2.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ... import journal as journal_mod
from ...errors import InputError
from ...images import sniff_file
from ...model import JobState
from .plan import Task

SOURCE_NAME = "specs"


@dataclass(frozen=True, slots=True)
class Earlier:
    """A job of an earlier session whose image a pending task can adopt."""

    session_id: str
    state: JobState


def find_earlier(sessions_dir: Path, tasks: Iterable[Task]) -> dict[str, Earlier]:
    """Task id -> the earlier job whose image it adopts (module docstring, case 1), for the
    tasks whose output file exists. Newest session first; a session that cannot be read is
    passed over (``--status`` reports it)."""
    wanted = {task.id: (task, task.prompt) for task in tasks if task.output_exists}
    if not wanted:
        return {}
    found: dict[str, Earlier] = {}
    for session_id in reversed(journal_mod.list_sessions(sessions_dir)):
        try:
            state = journal_mod.load(sessions_dir, session_id)
        except InputError:
            continue
        for js in state.jobs.values():
            task_id = js.job.label("spec_task")
            if js.job.source != SOURCE_NAME or task_id not in wanted or task_id in found:
                continue
            task, prompt = wanted[task_id]
            if _vouches(js, task, prompt):
                found[task_id] = Earlier(session_id, js)
        if len(found) == len(wanted):
            break
    return found


def _vouches(js: JobState, task: Task, prompt: str) -> bool:
    job = js.job
    if (
        js.status != "completed"
        or not js.output
        or js.delivery in (None, "done")
        or job.label("spec_item") != task.item_id
        or job.label("spec_fingerprint") != task.fingerprint
        or job.prompt != prompt
        or not _same_file(job.label("spec_file"), task.file)
        or not _same_file(js.output, task.output_path)
    ):
        return False
    try:
        info = sniff_file(task.output_path)
    except (OSError, ValueError):
        return False
    return js.image is None or (info.width, info.height) == (js.image.width, js.image.height)


def _same_file(recorded: object, path: Path) -> bool:
    if not isinstance(recorded, str):
        return False
    try:
        return Path(recorded).resolve() == path.resolve()
    except OSError:
        return False
