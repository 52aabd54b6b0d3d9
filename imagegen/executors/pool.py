"""The online pool: a worker pool that takes a session's jobs through a provider to image files.

One task group owns the workers; job ids flow to them through a bounded memory stream. A job
waits for a call slot (``Limits.concurrency``) and a start turn (spacing, per-minute cap,
pool-wide pause), then calls the provider under the retry policy (:mod:`imagegen.retry`).
Every status change is in the journal before the step that depends on it: ``running`` (with
the planned output path) before the call, ``completed`` only after the image file is on disk,
and the source's after-save step only after that.

A paid image is never thrown away: if it cannot be saved where it belongs it is kept in the
spool, the journal says where, and nothing new starts (the destination is broken for every
job); resume places it without a call (:mod:`imagegen.outputs`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import anyio

from .. import outputs as outputs_mod
from ..errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    BatchStop,
    JournalError,
    NoImage,
    ProviderError,
)
from ..journal import Journal, now_iso
from ..model import Attempt, JobState, JobUpdate, SessionUpdate
from ..outputs import Outputs, StorageError
from ..providers import ProviderInfo
from ..providers.base import Generation, ImageProvider, ImageRequest
from ..references import ReferenceCache
from ..retry import Breaker, RetryPolicy, call_with_retries
from ..sources import AfterSave
from .budget import Budget
from .limiter import Clock, Sleep, StartGate
from .recording import Recorder, deliver, size_note

__all__ = ["PoolView", "RunResult", "Runner", "deliver", "size_note"]


@dataclass(frozen=True, slots=True)
class RunResult:
    """Counts from the journal after a run, and why it stopped early (None if it did not)."""

    completed: int
    failed: int
    pending: int
    skipped: int
    stop_reason: str | None
    spent_usd: float | None = None  # this run's spending, when it ran under a budget

    @property
    def exit_code(self) -> int:
        """3 stopped, 1 some job failed or is unfinished, 0 every job done (README)."""
        if self.stop_reason:
            return EXIT_STOPPED
        return EXIT_FAILED if self.failed or self.pending else EXIT_OK


@dataclass
class PoolView:
    """What the live display shows beyond the journal's counts (written by the runner)."""

    in_flight: dict[str, int]  # job id -> attempt number
    recent: list[str]
    pause_until: float = 0.0
    pause_reason: str | None = None


class _Stopped(Exception):
    """The batch stopped before this job's next attempt could start."""


class Runner:
    """Runs the jobs of one open session. Clock and sleep are injected for tests.

    ``provider`` and ``info`` serve the jobs of provider ``info.name``; ``others`` maps the
    names of any other providers the session's jobs name to theirs. ``after_save(source_name)``
    gives the source's after-save step (or None).
    """

    def __init__(
        self,
        journal: Journal,
        provider: ImageProvider,
        info: ProviderInfo,
        gate: StartGate,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 90.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        notify: Callable[[str], None] | None = None,
        budget: Budget | None = None,
        references: ReferenceCache | None = None,
        outputs: Outputs | None = None,
        after_save: Callable[[str], AfterSave | None] | None = None,
        others: Mapping[str, tuple[ImageProvider, ProviderInfo]] | None = None,
    ) -> None:
        self.journal = journal
        self._providers = {info.name: (provider, info), **(others or {})}
        self.gate = gate
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.notify = notify or (lambda _line: None)
        self.view = PoolView({}, [])
        self.budget = budget
        self.references = references or ReferenceCache()
        self.outputs = outputs or Outputs(
            journal.session_id, journal.sessions_dir / f"{journal.session_id}-kept"
        )
        self.after_save = after_save or (lambda _name: None)
        self.breaker = Breaker(self.policy)
        self.recorder = Recorder(
            journal,
            self.outputs,
            lambda name: self._providers[name][1],
            self.after_save,
            self._finished,
            self.stop,
        )
        self.stop_reason: str | None = None
        self.interrupted = False
        self.fatal: JournalError | None = None
        self._settled = anyio.Event()

    def stop(self, reason: str) -> None:
        """Start nothing new; calls in flight finish and are recorded."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.notify(f"stopping: {reason}")

    async def run(self, job_ids: list[str]) -> RunResult:
        """Run ``job_ids`` (in order) to completion, failure, or a batch stop.

        Raises JournalError (after the workers finish) if the journal could not be written.
        """
        workers = self.gate.limits.concurrency * 2
        send, receive = anyio.create_memory_object_stream[str](0)
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(self._worker, receive.clone())
            receive.close()
            async with send:
                for job_id in job_ids:
                    if self.stop_reason:
                        break
                    await send.send(job_id)
        if self.fatal is not None:
            raise self.fatal
        return self.result()

    def result(self) -> RunResult:
        """The session's counts now (from the journal), and why the run stopped early."""
        counts = self.journal.state.counts
        return RunResult(
            counts["completed"],
            counts["failed"],
            counts["pending"] + counts["retry"] + counts["running"] + counts["submitted"],
            counts["skipped"],
            self.stop_reason,
            None if self.budget is None else round(self.budget.spent, 6),
        )

    async def _worker(self, receive: anyio.abc.ObjectReceiveStream[str]) -> None:
        async with receive:
            async for job_id in receive:
                if not self.stop_reason:
                    await self.run_job(job_id)

    async def run_job(self, job_id: str) -> None:
        """Take one job from its current status to completed, failed, or back to pending.

        If the run is cancelled (a second Ctrl-C), the job returns to pending. A journal that
        cannot be written stops the batch (:attr:`fatal`).
        """
        try:
            await self._run_job(job_id)
        except JournalError as exc:
            self.fatal = self.fatal or exc
            self.stop(str(exc))
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                self.view.in_flight.pop(job_id, None)
                with contextlib.suppress(JournalError):
                    await self.journal.update(
                        job_id,
                        JobUpdate(
                            status="pending",
                            output=None,
                            error="cancelled by Ctrl-C",
                            error_kind="cancelled",
                        ),
                    )
            raise

    async def _run_job(self, job_id: str) -> None:
        state = self.journal.job(job_id)
        label = f"[{job_id}] {state.job.title}"
        if state.kept:
            await self._place_kept(state, label)
            return
        paths = state.job.references
        try:
            refs = self.references.cached(paths)
            if refs is None:
                refs = await anyio.to_thread.run_sync(self.references.load, paths)
        except (OSError, ValueError) as exc:
            await self.journal.update(
                job_id,
                JobUpdate(
                    status="failed",
                    error=f"reference image unreadable: {exc}",
                    error_kind="reference_unreadable",
                    completed=now_iso(),
                ),
            )
            self._finished(f"✗ {label} → reference image unreadable")
            return
        job = state.job
        request = ImageRequest(
            job.model, job.prompt, refs, job.quality, job.aspect, self.timeout, state.resume
        )

        async def before_sleep(error: ProviderError, wait: float) -> None:
            self.view.in_flight.pop(job_id, None)
            now = self.journal.job(job_id)
            await self.journal.update(
                job_id,
                JobUpdate(status="retry", output=None, error=f"{error}", error_kind=error.kind),
                _attempt(now, error, wait),
            )
            self.notify(f"↻ {label} attempt {now.attempts} {error.kind}, retry in {wait:.0f}s")

        try:
            answer = await call_with_retries(
                lambda: self._attempt(job_id, request),
                self.policy,
                sleep=self.sleep,
                clock=self.clock,
                before_sleep=before_sleep,
            )
        except _Stopped:
            await self.journal.update(job_id, JobUpdate(status="pending", output=None))
            return
        except BatchStop as exc:
            self.stop(str(exc))
            self.view.in_flight.pop(job_id, None)
            now = self.journal.job(job_id)
            await self.journal.update(
                job_id,
                JobUpdate(status="pending", output=None, error=str(exc), error_kind=exc.kind),
                _attempt(now, exc, None),
            )
            return
        except ProviderError as exc:
            self.view.in_flight.pop(job_id, None)
            now = self.journal.job(job_id)
            reason = exc.reason if isinstance(exc, NoImage) else None
            await self.journal.update(
                job_id,
                JobUpdate(
                    status="failed",
                    output=None,
                    error=str(exc),
                    error_kind=exc.kind,
                    completed=now_iso(),
                    finish_reason=reason,
                    resume=None,
                ),
                _attempt(now, exc, None),
            )
            self._finished(f"✗ {label} → {exc.kind}: {reason or exc}")
            return
        with anyio.CancelScope(shield=True):  # a paid image is saved and recorded whole
            await self._complete(job_id, answer, label)

    async def _attempt(self, job_id: str, request: ImageRequest) -> tuple[Generation, Path, float]:
        async with self.gate.slots:
            if self.stop_reason:
                raise _Stopped
            await self.gate.wait_turn()
            # No await between this check and the reservation below: the first call's real
            # cost decides what every later call holds.
            while self.budget is not None and self.budget.must_wait():
                await self._settled.wait()
            if self.stop_reason:
                raise _Stopped
            state = self.journal.job(job_id)
            job = state.job
            provider, info = self._providers[job.provider]
            price = info.estimate(job.model, job.quality, job.aspect, len(job.references))
            held = 0.0
            if self.budget is not None:
                held = self.budget.reservation(price)
                if not self.budget.reserve(held):
                    self.stop(f"budget reached (--max-cost ${self.budget.limit:.2f})")
                    raise _Stopped
            attempt = state.attempts + 1
            planned = self.outputs.plan(job, datetime.now())
            cost, billed = 0.0, False
            try:
                await self._check_destination(
                    planned, info.pixel_size(job.model, job.quality, job.aspect)
                )
                await self.journal.update(
                    job_id,
                    JobUpdate(
                        status="running", attempts=attempt, started=now_iso(), output=str(planned)
                    ),
                )
                self.view.in_flight[job_id] = attempt

                async def checkpoint(token: str) -> None:
                    await self.journal.update(job_id, JobUpdate(resume=token))

                request = replace(request, resume=self.journal.job(job_id).resume)
                try:
                    generation = await provider.generate(request, checkpoint)
                except BatchStop as exc:
                    self.stop(str(exc))  # before the slot is released: nothing new may start
                    raise
                except ProviderError as exc:
                    await self._after_failure(exc)
                    raise
                self.breaker.success()
                cost = info.cost(
                    job.model, job.quality, job.aspect, len(job.references), generation.usage
                )
                billed = True
                return generation, planned, cost
            except BaseException:
                self.outputs.release(planned)
                raise
            finally:
                if self.budget is not None:
                    self.budget.settle(held, cost, price if billed else None)
                    self._settled.set()
                    self._settled = anyio.Event()

    async def _check_destination(self, planned: Path, size: tuple[int, int] | None) -> None:
        """Before paying: the image's folder can be made and written, and has room for it.

        A folder that is a file, read-only or full stops the batch here, with nothing paid
        (:meth:`imagegen.outputs.Outputs.check`); checked once per folder, the free space at
        most once a second, so most calls make no extra system call.
        """
        need = outputs_mod.bytes_bound(size)
        if not self.outputs.needs_check(planned.parent, need):
            return
        try:
            await anyio.to_thread.run_sync(self.outputs.check, planned.parent, need)
        except StorageError as exc:
            self.stop(f"{exc} (nothing was paid for this image; fix it, then --resume)")
            raise _Stopped from exc

    async def _after_failure(self, error: ProviderError) -> None:
        """Pool-wide consequences of one failed call: a 429 pause, the circuit breaker."""
        pause = self.policy.pool_pause(error)
        if pause is not None:
            await self._pause(*pause)
        verdict = self.breaker.record(error)
        if verdict == "pause":
            await self._pause(
                self.policy.breaker_pause,
                f"circuit breaker: {self.policy.breaker_threshold} server errors in a row",
            )
        elif verdict == "stop":
            failures = self.policy.breaker_trips_to_stop * self.policy.breaker_threshold
            self.stop(
                f"the service failed {failures} calls in a row with no success; "
                "resume later with --resume"
            )

    async def _pause(self, seconds: float, reason: str) -> None:
        """Pause every start, and say so in the journal and the display."""
        self.gate.pause(seconds, reason)
        self.view.pause_until, self.view.pause_reason = self.gate.paused_until, reason
        until = datetime.now() + timedelta(seconds=seconds)
        await self.journal.update_session(
            SessionUpdate(paused_until=until.isoformat(timespec="seconds"), pause_reason=reason)
        )
        self.notify(f"⏸ pool paused {seconds:.0f}s: {reason}")

    async def _complete(
        self, job_id: str, answer: tuple[Generation, Path, float], label: str
    ) -> None:
        generation, planned, cost = answer
        self.view.in_flight.pop(job_id, None)
        await self.recorder.complete(job_id, generation, planned, cost, label)

    async def _place_kept(self, state: JobState, label: str) -> None:
        """A paid image waiting in the spool: put it where it belongs, no call."""
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
            await self._run_job(state.id)
            return
        planned = self.outputs.plan(state.job, datetime.now())
        try:
            placement = await anyio.to_thread.run_sync(
                self.outputs.save, state.job, state.id, state.attempts, planned, data
            )
        except StorageError as exc:
            self.stop(f"{exc}; paid images stay kept in {kept.parent}")
            return
        finally:
            self.outputs.release(planned)
        await self.recorder.record_saved(
            state, placement, state.cost_usd or 0.0, 0.0, "placed from the spool", None, label
        )
        await anyio.to_thread.run_sync(self.outputs.discard_temp, planned, state.id, state.attempts)
        await anyio.to_thread.run_sync(lambda: kept.unlink(missing_ok=True))

    def _finished(self, line: str) -> None:
        self.view.recent.insert(0, line)
        del self.view.recent[5:]
        self.notify(line)


def _attempt(state: JobState, error: ProviderError, wait: float | None) -> Attempt:
    """One failed attempt, as kept in the job's ``history``."""
    return Attempt(
        attempt=state.attempts,
        started=state.started,
        ended=now_iso(),
        outcome=error.kind,
        error=str(error),
        wait=None if wait is None else round(wait, 3),
    )
