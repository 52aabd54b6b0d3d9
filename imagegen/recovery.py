"""Picking a session up again: what a crash left behind, and which jobs resume or retry runs.

Rules (issue 3, "Verbs", and the reliability issue): a completed job is never called again by
``--resume``. A job a crash left ``running`` is adopted without a call when its attempt's
temporary file holds a whole image (the proof it was paid for and written; see
:mod:`imagegen.outputs`), or, for journals written before that rule, when its planned output is
a whole image of the right size; otherwise it returns to pending. A completed job whose
source's after-save step did not finish gets that step again; so does an adopted image (the
step never ran for it) and a job its source planned as skipped with the step pending.
``--retry`` first recovers interrupted jobs the same way, then re-runs the named jobs whatever
their status (a completed one gets a new file; the old one is kept), or every failed job.
"""

from __future__ import annotations

import contextlib
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import anyio

from .errors import InputError
from .executors.recording import deliver, size_note
from .images import sniff_file
from .journal import Journal, now_iso
from .model import RUNNABLE, UNSET, Attempt, ImageMeta, JobState, JobUpdate
from .outputs import Outputs, Placement, StorageError
from .providers import ProviderInfo
from .sources import AfterSave


def _v1_output(state: JobState, info: ProviderInfo) -> Placement | None:
    """Format-1 journals kept no temporary file: their planned output, if whole and right."""
    if not state.output:
        return None
    try:
        image = sniff_file(Path(state.output))
    except (OSError, ValueError):
        return None
    if size_note(info, state, image) is not None:
        return None
    return Placement(Path(state.output), image)


async def recover_interrupted(
    journal: Journal,
    outputs: Outputs,
    info: Callable[[str], ProviderInfo],
    after_save: Callable[[str], AfterSave | None],
) -> list[str]:
    """Settle what a crash left: adopt the images interrupted attempts paid for and wrote,
    finish after-save steps, return the rest to pending. Returns the ids still to run, in
    plan order. Raises JournalError if the journal cannot be written."""
    todo: list[str] = []
    # A kill between an attempt's "completed" entry and the removal of its temporary file
    # leaves the file (a second name of the saved image): remove those first.
    leftovers: defaultdict[str, set[str]] = defaultdict(set)
    for js in journal.state.jobs.values():
        if js.status == "completed" and js.output and js.attempts:
            folder = os.path.dirname(js.output)  # noqa: PTH120 (a Path per job costs more)
            leftovers[folder].add(outputs.temp_name(js.id, js.attempts))
    await anyio.to_thread.run_sync(_remove_present, leftovers)
    for state in list(journal.state.jobs.values()):
        step = after_save(state.job.source)
        if state.status == "running":
            state = await _settle_running(
                journal, outputs, info(state.job.provider), state, step is not None
            )
        # A skipped job may carry a pending step too: an image made earlier, not yet recorded.
        pending = state.status in ("completed", "skipped") and state.delivery == "pending"
        if pending and step is not None:
            await deliver(journal, state, step)
        if state.status in RUNNABLE:
            todo.append(state.id)
    return todo


async def _settle_running(
    journal: Journal, outputs: Outputs, info: ProviderInfo, state: JobState, has_step: bool
) -> JobState:
    """Adopt the image a crashed attempt wrote (its after-save step, if ``has_step``, then
    pending too), or return the job to pending."""
    placement: Placement | None = None
    if state.output:
        planned = Path(state.output)
        try:
            placement = await anyio.to_thread.run_sync(
                outputs.adopt, state.job, state.id, state.attempts, planned
            )
        except StorageError:
            placement = None
        if placement is None and journal.state.version < 2:
            placement = await anyio.to_thread.run_sync(_v1_output, state, info)
    if placement is None:
        return await journal.update(
            state.id,
            JobUpdate(status="pending", output=None),
        )
    job = state.job
    price = info.estimate(job.model, job.quality, job.aspect, len(job.references))
    note = size_note(info, state, placement.info)
    variants = (*state.variant_outputs, str(placement.path)) if job.variants > 1 else ()
    more = len(variants) < job.variants if variants else False
    adopted = await journal.update(
        state.id,
        JobUpdate(
            status="pending" if more else "completed",
            output=variants[0] if variants else str(placement.path),
            variant_outputs=variants if variants else UNSET,
            completed=None if more else now_iso(),
            error=note,
            error_kind="wrong_size" if note else None,
            # The answer's usage died with the process: the published price stands in.
            cost_usd=round((state.cost_usd or 0.0) + price, 6),
            image=ImageMeta(
                placement.info.format, placement.info.width, placement.info.height, not note
            ),
            resume=None,
            # The step runs once the job's last variant is saved.
            delivery="pending" if has_step and not more else None,
        ),
        Attempt(
            attempt=state.attempts,
            started=state.started,
            ended=now_iso(),
            outcome="adopted after a crash",
            output=str(placement.path),
            cost_usd=round(price, 6),
        ),
    )
    if state.output:
        await anyio.to_thread.run_sync(
            outputs.discard_temp, Path(state.output), state.id, state.attempts
        )
    return adopted


def _remove_present(names_by_folder: Mapping[str, set[str]]) -> None:
    """Remove those of the named files that exist: one listing per folder, not a call per
    name (6,000 completed jobs of a 10,000-job session share a few folders)."""
    for folder, names in names_by_folder.items():
        where = Path(folder or ".")
        # A folder gone or read-only: nothing of ours to clean there.
        with contextlib.suppress(OSError):
            with os.scandir(where) as entries:
                present = [entry.name for entry in entries if entry.name in names]
            for name in present:
                with contextlib.suppress(OSError):
                    (where / name).unlink()


def parse_job_ids(journal: Journal, wanted: Sequence[str]) -> list[str]:
    """Job ids as the user wrote them ("15", "015") -> the session's ids; InputError names
    the first that is not in the session."""
    ids = list(journal.state.jobs)
    width = max((len(i) for i in ids), default=3)
    out = []
    for raw in wanted:
        job_id = raw.strip()
        if job_id.isdigit():
            job_id = job_id.zfill(width)
        if job_id not in journal.state.jobs:
            raise InputError(
                f"session {journal.session_id} has no job {raw!r}; jobs are {ids[0]} to "
                f"{ids[-1]} (see --status {journal.session_id})"
            )
        if job_id not in out:
            out.append(job_id)
    return out


async def prepare_retry(journal: Journal, job_ids: Sequence[str]) -> list[str]:
    """Return the named jobs (or, when none are named, every failed job) to pending; returns
    their ids. Raises InputError when there is nothing to retry."""
    chosen = list(job_ids) or [js.id for js in journal.state.jobs.values() if js.status == "failed"]
    if not chosen:
        raise InputError(
            f"session {journal.session_id} has no failed jobs; retry one with --job ID"
        )
    for job_id in chosen:
        await journal.update(
            job_id, JobUpdate(status="pending", output=None, error=None, error_kind=None)
        )
    return chosen
