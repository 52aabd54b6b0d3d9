"""The output side of a batch: its result file folded into the journal, line by line.

Lines are read a chunk at a time in a worker thread and each is read as the online path reads
an answer (:meth:`~imagegen.providers.batch.BatchService.read_result`: the same image choice
and checks, usage, finish reasons, failure kinds), matched to its job by key whatever the
order; a key answered twice, or not waited for, is ignored. For a chunk's images the planned
output paths are journaled first (one append), then each image is saved and journaled
``completed`` exactly as online (:class:`~.recording.Recorder`), at the batch price: a crash in
between leaves a temporary file the next fold adopts instead of writing the image twice. A
failed line sends its job back to pending or to failed by the online retry policy
(:func:`~.batch_plan.verdict`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import anyio

from ..errors import FileGone, ProviderError
from ..journal import Journal, now_iso
from ..model import Attempt, JobUpdate
from ..providers import ProviderInfo
from ..providers.base import Generation
from ..providers.batch import BatchService, ResultLine
from ..retry import RetryPolicy
from .batch_plan import verdict
from .recording import Recorder, SavedHook
from .uploads import ReferenceUploads

#: Result lines read, parsed and journaled together (one fsync for their planned outputs).
FOLD_CHUNK = 64
#: Images saved at once while folding (each save is two fsyncs in a worker thread).
FOLD_WORKERS = 8


class ResultFolder:
    """Folds result files of provider ``info``'s batches into ``journal``.

    ``settle(job_id, cost, billed)`` books a job's cost against the budget; ``hand_back``
    is told each job sent back to pending (for the online pool); ``stop(reason)`` stops the
    run (a :class:`~imagegen.errors.BatchStop` answer); ``halted()`` says whether to stop
    folding between chunks (Ctrl-C, a broken destination: ``--resume`` folds the rest);
    ``saved`` is the runner's hook after a save, called by :meth:`after_saves`.
    """

    def __init__(
        self,
        journal: Journal,
        service: BatchService,
        info: ProviderInfo,
        recorder: Recorder,
        policy: RetryPolicy,
        *,
        uploads: ReferenceUploads | None,
        settle: Callable[[str, float, bool], None],
        hand_back: Callable[[str], None],
        stop: Callable[[str], None],
        halted: Callable[[], bool],
        saved: SavedHook | None = None,
    ) -> None:
        if info.batch_cost is None:
            raise ValueError(f"{info.name} has no Batch API prices")
        self.journal = journal
        self.service = service
        self.info = info
        self.recorder = recorder
        self.outputs = recorder.outputs
        self.policy = policy
        self.uploads = uploads
        self.settle = settle
        self.hand_back = hand_back
        self.stop = stop
        self.halted = halted
        self.saved = saved
        self._cost = info.batch_cost

    async def fold(self, results: Path, waiting: set[str]) -> set[str]:
        """Fold the result file at ``results`` for the jobs ``waiting`` (submitted); returns
        the job ids it answered."""
        answered: set[str] = set()
        limiter = anyio.CapacityLimiter(FOLD_WORKERS)
        with contextlib.closing(_read_lines(results)) as lines:
            while not self.halted():
                chunk = await anyio.to_thread.run_sync(_take, lines, FOLD_CHUNK)
                if not chunk:
                    break
                read = await anyio.to_thread.run_sync(self._read_chunk, chunk)
                fresh: list[tuple[str, ResultLine]] = []
                for result in read:
                    if result.key in waiting and result.key not in answered:
                        answered.add(result.key)
                        fresh.append((result.key, result))
                with anyio.CancelScope(shield=True):  # a chunk once begun ends whole
                    await self._fold_chunk(fresh, limiter)
        return answered

    async def after_saves(self, job_ids: Sequence[str]) -> None:
        """Call the ``saved`` hook for each completed job of ``job_ids`` (a folded shard),
        ``FOLD_WORKERS`` worker threads at once; stops early when halted (the report makes
        any thumbnail missing)."""
        hook = self.saved
        if hook is None:
            return
        todo = iter(
            [
                (Path(state.output), state.job.references)
                for state in (self.journal.job(j) for j in job_ids)
                if state.status == "completed" and state.output
            ]
        )

        async def worker() -> None:
            for path, references in todo:  # one iterator shared by the workers
                if self.halted():
                    return
                await anyio.to_thread.run_sync(hook, path, references)

        async with anyio.create_task_group() as tg:
            for _ in range(FOLD_WORKERS):
                tg.start_soon(worker)

    def _read_chunk(self, chunk: list[bytes]) -> list[ResultLine]:
        out = []
        for line in chunk:
            try:
                out.append(self.service.read_result(line, self._want))
            except ValueError:
                continue  # a damaged line: its job is "not answered"
        return out

    def _want(self, key: str) -> tuple[int, int] | None:
        state = self.journal.state.jobs.get(key)
        if state is None:
            return None
        job = state.job
        return self.info.pixel_size(job.model, job.quality, job.aspect)

    async def _fold_chunk(
        self, results: list[tuple[str, ResultLine]], limiter: anyio.CapacityLimiter
    ) -> None:
        images = [(j, r.generation) for j, r in results if r.generation is not None]
        planned: dict[str, Path] = {}
        for job_id, _ in images:
            state = self.journal.job(job_id)
            planned[job_id] = (
                Path(state.output) if state.output else self.outputs.plan(state.job, datetime.now())
            )
        await self.journal.update_many(
            (job_id, JobUpdate(output=str(planned[job_id])), None)
            for job_id, _ in images
            if self.journal.job(job_id).output != str(planned[job_id])
        )
        async with anyio.create_task_group() as tg:
            for job_id, generation in images:
                assert generation is not None
                tg.start_soon(self._save, job_id, generation, planned[job_id], limiter)
        for job_id, result in results:
            if result.error is not None:
                await self.failed(job_id, result.error)

    async def _save(
        self, job_id: str, generation: Generation, planned: Path, limiter: anyio.CapacityLimiter
    ) -> None:
        async with limiter:
            state = self.journal.job(job_id)
            job = state.job
            cost = self._cost(
                job.model, job.quality, job.aspect, len(job.references), generation.usage
            )
            label = f"[{job_id}] {job.title}"
            placement = await anyio.to_thread.run_sync(
                self.outputs.adopt, job, job_id, state.attempts, planned
            )
            if placement is not None:  # written before a crash: recorded, not written again
                total = round((state.cost_usd or 0.0) + cost, 6)
                await self.recorder.record_saved(
                    state, placement, total, cost, "completed", generation, label
                )
                await anyio.to_thread.run_sync(
                    self.outputs.discard_temp, planned, job_id, state.attempts
                )
            else:
                await self.recorder.complete(job_id, generation, planned, cost, label)
            self.settle(job_id, cost, True)

    async def failed(self, job_id: str, error: ProviderError) -> None:
        """A job the batch answered with a failure (or did not answer): pending again or
        failed, by the online policy."""
        state = self.journal.job(job_id)
        if isinstance(error, FileGone) and self.uploads is not None:
            self.uploads.forget(error.name)
        ruling = verdict(self.policy, state, error)
        attempt = Attempt(
            attempt=state.attempts,
            started=state.started,
            ended=now_iso(),
            outcome=error.kind,
            error=str(error),
        )
        if ruling == "failed":
            update = JobUpdate(
                status="failed",
                output=None,
                error=str(error),
                error_kind=error.kind,
                completed=now_iso(),
                finish_reason=getattr(error, "reason", None),
                resume=None,
            )
            self.recorder.finished(f"✗ [{job_id}] {state.job.title} → {error.kind}: {error}")
        else:
            update = JobUpdate(
                status="pending", output=None, error=str(error), error_kind=error.kind
            )
            self.hand_back(job_id)
        await self.journal.update(job_id, update, attempt)
        self.settle(job_id, 0.0, False)
        if ruling == "stop":
            self.stop(str(error))


def _read_lines(path: Path) -> Generator[bytes, None, None]:
    """The lines of a result file, one at a time (blocking: call through a thread)."""
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield line


def _take(lines: Iterator[bytes], count: int) -> list[bytes]:
    out = []
    for line in lines:
        out.append(line)
        if len(out) >= count:
            break
    return out
