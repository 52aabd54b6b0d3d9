"""Recording a paid image: saved where it belongs and journaled, or kept in the spool.

What every executor does with an image the provider returned, whether it came from an online
call (:mod:`.pool`) or from a batch's result file (:mod:`.batch`), so that both write the same
journal events for a job's outcome: the image is saved durably (:meth:`Outputs.save`), then
``completed`` is journaled with its cost, usage, size check and attempt; the source's
after-save step runs after that. A destination that cannot be written keeps the paid bytes in
the spool, says where in the journal, and stops the run (:meth:`Recorder.keep`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio

from ..images import ImageInfo
from ..journal import Journal, now_iso
from ..model import UNSET, Attempt, ImageMeta, JobState, JobUpdate
from ..outputs import Outputs, Placement, StorageError
from ..providers import ProviderInfo
from ..providers.base import Generation
from ..sources import AfterSave


def size_note(info: ProviderInfo, state: JobState, image: ImageInfo) -> str | None:
    """A note if the image is not the pixel size the provider promises (None when it is)."""
    job = state.job
    want = info.pixel_size(job.model, job.quality, job.aspect)
    if want is None or (image.width, image.height) == want:
        return None
    return (
        f"wrong size: got {image.width}x{image.height}, {job.quality} {job.aspect} "
        f"is {want[0]}x{want[1]}"
    )


async def deliver(journal: Journal, state: JobState, step: AfterSave) -> None:
    """Run a source's after-save step for a completed job and journal how it went."""
    try:
        problem = await anyio.to_thread.run_sync(step, state, journal.state.config)
    except Exception as exc:  # the image is safe; the step's failure is reported, not fatal
        problem = f"{type(exc).__name__}: {exc}"
    await journal.update(
        state.id, JobUpdate(delivery="done" if problem is None else f"not written: {problem}")
    )


class Recorder:
    """Saves and journals the images of one session's executors.

    ``info(provider_name)`` gives a job's provider; ``after_save(source_name)`` its source's
    after-save step (or None); ``finished(line)`` is told each outcome (the display's "recent"
    lines); ``stop(reason)`` stops the run (a broken destination).
    """

    def __init__(
        self,
        journal: Journal,
        outputs: Outputs,
        info: Callable[[str], ProviderInfo],
        after_save: Callable[[str], AfterSave | None],
        finished: Callable[[str], None],
        stop: Callable[[str], None],
    ) -> None:
        self.journal = journal
        self.outputs = outputs
        self.info = info
        self.after_save = after_save
        self.finished = finished
        self.stop = stop

    async def complete(
        self, job_id: str, generation: Generation, planned: Path, cost: float, label: str
    ) -> None:
        """Save a paid image at ``planned`` and journal ``completed`` (``cost`` USD added to
        what the job cost so far), or keep it in the spool if the destination is broken."""
        state = self.journal.job(job_id)
        attempt = state.attempts
        total_cost = round((state.cost_usd or 0.0) + cost, 6)  # retries of a job add up
        try:
            placement = await anyio.to_thread.run_sync(
                self.outputs.save, state.job, job_id, attempt, planned, generation.image
            )
        except StorageError as exc:
            await self.keep(state, generation, exc, total_cost, cost, label)
            return
        finally:
            self.outputs.release(planned)
        await self.record_saved(state, placement, total_cost, cost, "completed", generation, label)
        await anyio.to_thread.run_sync(self.outputs.discard_temp, planned, job_id, attempt)

    async def record_saved(
        self,
        state: JobState,
        placement: Placement,
        total_cost: float,
        cost: float,
        outcome: str,
        generation: Generation | None,
        label: str,
    ) -> None:
        """Journal a saved image as ``completed`` (``outcome`` names how in its history),
        then run the source's after-save step."""
        info = placement.info
        size = size_note(self.info(state.job.provider), state, info)
        chosen = generation.note if generation is not None else None
        note = "; ".join(n for n in (size, chosen) if n) or None
        step = self.after_save(state.job.source)
        updated = await self.journal.update(
            state.id,
            JobUpdate(
                status="completed",
                output=str(placement.path),
                completed=now_iso(),
                error=note,
                error_kind="wrong_size" if size else None,
                cost_usd=total_cost,
                image=ImageMeta(info.format, info.width, info.height, size is None),
                resume=None,
                kept=None,
                delivery="pending" if step is not None else None,
                finish_reason=generation.finish_reason if generation else UNSET,
                usage=generation.usage if generation else UNSET,
            ),
            Attempt(
                attempt=state.attempts,
                started=state.started,
                ended=now_iso(),
                outcome=outcome,
                output=str(placement.path),
                cost_usd=round(cost, 6),
            ),
        )
        aside = f" (old file kept as {placement.aside.name})" if placement.aside else ""
        self.finished(f"✓ {label} → saved {placement.path.name}{aside}")
        if step is not None:
            await deliver(self.journal, updated, step)

    async def keep(
        self,
        state: JobState,
        generation: Generation,
        error: StorageError,
        total_cost: float,
        cost: float,
        label: str,
    ) -> None:
        """The destination is broken: keep the paid bytes, journal where, stop the run."""
        attempt = state.attempts
        try:
            kept = await anyio.to_thread.run_sync(
                self.outputs.keep, state.id, attempt, generation.image
            )
        except OSError as spool_error:
            await self.journal.update(
                state.id,
                JobUpdate(
                    status="failed",
                    output=None,
                    error=f"{error}; the image could not be kept either ({spool_error})",
                    error_kind="write_failed",
                    completed=now_iso(),
                    cost_usd=total_cost,
                    usage=generation.usage,
                    finish_reason=generation.finish_reason,
                ),
            )
            self.finished(f"✗ {label} → {error}")
            self.stop(str(error))
            return
        await self.journal.update(
            state.id,
            JobUpdate(
                status="pending",
                output=None,
                error=f"{error}; the paid image is kept in {kept}",
                error_kind="write_failed",
                kept=str(kept),
                cost_usd=total_cost,
                usage=generation.usage,
                finish_reason=generation.finish_reason,
            ),
            Attempt(
                attempt=attempt,
                started=state.started,
                ended=now_iso(),
                outcome="write_failed",
                error=str(error),
                output=str(kept),
                cost_usd=round(cost, 6),
            ),
        )
        self.finished(f"✗ {label} → {error.cause}: image kept in {kept}")
        self.stop(f"{error}; paid images are kept in {kept.parent}")
