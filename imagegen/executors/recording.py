"""Recording a paid image: saved where it belongs and journaled, or kept in the spool.

What every executor does with an image the provider returned, whether it came from an online
call (:mod:`.pool`) or from a batch's result file (:mod:`.batch`), so that both write the same
journal events for a job's outcome: the image is saved durably (:meth:`Outputs.save`), then
journaled with its cost, usage, request id, model version, size check and attempt: ``completed``,
or ``pending`` again while the job still wants another of its variants (``--variants``). Once
its last image is journaled the source's after-save step runs (one step at a time per session,
each seeing every change journaled before it), and then the ``saved`` hook (the contact sheet's
thumbnails). A destination that cannot be written keeps the paid bytes in the spool, says where
in the journal, and stops the run (:meth:`Recorder.keep`); a later run places them from there
without a call (:meth:`Recorder.place_kept`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import anyio

from ..images import ImageInfo
from ..journal import Journal, now_iso
from ..model import UNSET, Attempt, ImageMeta, JobState, JobUpdate
from ..outputs import Outputs, Placement, StorageError
from ..providers import ProviderInfo
from ..providers.base import Generation
from ..sources import AfterSave, SessionView

#: ``saved(image, references)``: told in a worker thread of each image saved and journaled.
SavedHook = Callable[[Path, Sequence[str]], None]


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


def session_view(journal: Journal, stop_reason: str | None = None) -> SessionView:
    """A snapshot of the session for a source's step (a shallow copy: job states are frozen)."""
    state = journal.state
    return SessionView(state.session_id, state.config, dict(state.jobs), stop_reason)


async def deliver(
    journal: Journal, state: JobState, step: AfterSave, lock: anyio.Lock | None = None
) -> None:
    """Run a source's after-save step for a completed job and journal how it went. With
    ``lock``, steps run one at a time, each seeing every change journaled before it."""
    async with lock or contextlib.nullcontext():
        view = session_view(journal)
        try:
            problem = await anyio.to_thread.run_sync(step, state, view)
        except Exception as exc:  # the image is safe; the step's failure is reported, not fatal
            problem = f"{type(exc).__name__}: {exc}"
        await journal.update(
            state.id, JobUpdate(delivery="done" if problem is None else f"not written: {problem}")
        )


class Recorder:
    """Saves and journals the images of one session's executors.

    ``info(provider_name)`` gives a job's provider; ``after_save(source_name)`` its source's
    after-save step (or None); ``finished(line)`` is told each job's outcome (the display's
    "recent" lines and pace) and ``notify(line)`` each step short of one (a variant with more to
    come); ``stop(reason)`` stops the run (a broken destination). ``saved(image, references)``
    runs in a worker thread after each image is saved and journaled; it must not raise.
    Executors of one session share one recorder (:meth:`bound` gives each its own display and
    stop), so that their after-save steps run one at a time.
    """

    def __init__(
        self,
        journal: Journal,
        outputs: Outputs,
        info: Callable[[str], ProviderInfo],
        after_save: Callable[[str], AfterSave | None],
        finished: Callable[[str], None],
        stop: Callable[[str], None],
        *,
        notify: Callable[[str], None] | None = None,
        saved: SavedHook | None = None,
        lock: anyio.Lock | None = None,
    ) -> None:
        self.journal = journal
        self.outputs = outputs
        self.info = info
        self.after_save = after_save
        self.finished = finished
        self.stop = stop
        self.notify = notify or (lambda _line: None)
        self.saved = saved
        self.delivering = lock or anyio.Lock()

    def bound(
        self,
        *,
        finished: Callable[[str], None],
        stop: Callable[[str], None],
        notify: Callable[[str], None] | None = None,
        saved_hook: bool = True,
    ) -> Recorder:
        """The same recorder (journal, outputs, steps, after-save lock) telling another
        executor's display and stopping another executor; without ``saved_hook`` it does not
        call the ``saved`` hook (the executor calls it itself, later)."""
        return Recorder(
            self.journal,
            self.outputs,
            self.info,
            self.after_save,
            finished,
            stop,
            notify=notify or self.notify,
            saved=self.saved if saved_hook else None,
            lock=self.delivering,
        )

    async def complete(
        self, job_id: str, generation: Generation, planned: Path, cost: float, label: str
    ) -> bool:
        """Save a paid image at ``planned`` and journal it (``cost`` USD added to what the job
        cost so far), or keep it in the spool if the destination is broken. True when the job
        wants another variant."""
        state = self.journal.job(job_id)
        attempt = state.attempts
        total_cost = round((state.cost_usd or 0.0) + cost, 6)  # retries of a job add up
        try:
            placement = await anyio.to_thread.run_sync(
                self.outputs.save, state.job, job_id, attempt, planned, generation.image
            )
        except StorageError as exc:
            await self.keep(state, generation, exc, total_cost, cost, label)
            return False
        finally:
            self.outputs.release(planned)
        more = await self.record_saved(
            state, placement, total_cost, cost, "completed", generation, label
        )
        await anyio.to_thread.run_sync(self.outputs.discard_temp, planned, job_id, attempt)
        return more

    async def record_saved(
        self,
        state: JobState,
        placement: Placement,
        total_cost: float,
        cost: float,
        outcome: str,
        generation: Generation | None,
        label: str,
    ) -> bool:
        """Journal a saved image (``outcome`` names how in its history): ``completed``, or
        ``pending`` while the job wants more variants; then the source's after-save step once
        the job is complete, and the ``saved`` hook. True when the job wants another variant."""
        info = placement.info
        size = size_note(self.info(state.job.provider), state, info)
        chosen = generation.note if generation is not None else None
        note = "; ".join(n for n in (size, chosen) if n) or None
        wanted = state.job.variants
        variants = (*state.variant_outputs, str(placement.path)) if wanted > 1 else ()
        more = len(variants) < wanted if wanted > 1 else False
        if wanted > 1:
            outcome = f"{outcome} (variant {len(variants)} of {wanted})"
        step = None if more else self.after_save(state.job.source)
        updated = await self.journal.update(
            state.id,
            JobUpdate(
                status="pending" if more else "completed",
                output=variants[0] if variants else str(placement.path),
                variant_outputs=variants if wanted > 1 else UNSET,
                completed=None if more else now_iso(),
                error=note,
                error_kind="wrong_size" if size else None,
                cost_usd=total_cost,
                image=ImageMeta(info.format, info.width, info.height, size is None),
                resume=None,
                kept=None,
                delivery="pending" if step is not None else None,
                finish_reason=generation.finish_reason if generation else UNSET,
                usage=generation.usage if generation else UNSET,
                request_id=generation.request_id if generation else UNSET,
                model_version=generation.model_version if generation else UNSET,
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
        which = f" (variant {len(variants)} of {wanted})" if wanted > 1 else ""
        if more:
            self.notify(f"✓ {label} → saved {placement.path.name}{which}")
        else:
            self.finished(f"✓ {label} → saved {placement.path.name}{which}{aside}")
        if step is not None:
            await deliver(self.journal, updated, step, self.delivering)
        if self.saved is not None:
            await anyio.to_thread.run_sync(self.saved, placement.path, state.job.references)
        return more

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

    async def place_kept(self, state: JobState, label: str) -> bool:
        """A paid image waiting in the spool: put it where it belongs, no call. True when
        the job wants another image (another variant, or the kept one is gone)."""
        kept = Path(state.kept or "")
        try:
            data = await anyio.to_thread.run_sync(kept.read_bytes)
        except OSError as exc:
            await self.journal.update(
                state.id,
                JobUpdate(
                    kept=None,
                    error=f"the kept image {kept} is gone ({exc.strerror}); generating again",
                ),
            )
            return True
        planned = self.outputs.plan(state.job, datetime.now(), len(state.variant_outputs) + 1)
        try:
            placement = await anyio.to_thread.run_sync(
                self.outputs.save, state.job, state.id, state.attempts, planned, data
            )
        except StorageError as exc:
            self.stop(f"{exc}; paid images stay kept in {kept.parent}")
            return False
        finally:
            self.outputs.release(planned)
        more = await self.record_saved(
            state, placement, state.cost_usd or 0.0, 0.0, "placed from the spool", None, label
        )
        await anyio.to_thread.run_sync(self.outputs.discard_temp, planned, state.id, state.attempts)
        await anyio.to_thread.run_sync(lambda: kept.unlink(missing_ok=True))
        return more
