"""The online pool: a worker pool that takes a session's jobs through a provider to image files.

One task group owns the workers; job ids flow to them through a bounded memory stream. A job
waits for a call slot (``Limits.concurrency``) and a start turn (spacing, per-minute cap,
pool-wide pause), holds its share of the run's budget and of its cost group's cap
(:mod:`.budget`; a group at its cap stops, the others go on), then calls the provider under
the retry policy (:mod:`imagegen.retry`). A job of a local provider (one that draws on this
machine for free) skips the slot, the turn, the budget and the circuit breaker.
Every status change is in the journal before the step that depends on it: ``running`` (with
the planned output path) before the call, ``completed`` only after the image file is on disk,
and the source's after-save step only after that (one step at a time per session).

A paid image is never thrown away: if it cannot be saved where it belongs it is kept in the
spool, the journal says where, and nothing new starts (the destination is broken for every
job); resume places it without a call (:mod:`imagegen.outputs`). Saving and journaling an image
is the :class:`~.recording.Recorder`'s, shared with the Batch API executor (:mod:`.batch`).
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
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
from ..model import RUNNABLE, Attempt, JobState, JobUpdate, SessionUpdate
from ..outputs import Outputs, StorageError
from ..providers import ProviderInfo
from ..providers.base import Generation, ImageProvider, ImageRequest, Reference
from ..references import ReferenceCache
from ..retry import Breaker, RetryPolicy, call_with_retries
from ..sources import AfterSave
from .budget import Budget, GroupCaps
from .limiter import Clock, Sleep, StartGate
from .recording import Recorder, SavedHook


@dataclass(frozen=True, slots=True)
class RunResult:
    """Counts from the journal after a run, and why it stopped early (None if it did not)."""

    completed: int
    failed: int
    pending: int
    skipped: int
    stop_reason: str | None
    spent_usd: float | None = None  # this run's spending, when it ran under a budget
    unrecorded: int = 0  # images saved whose source's after-save step did not succeed
    notes: tuple[str, ...] = ()  # lines the sources' end-of-run steps give the summary

    @property
    def exit_code(self) -> int:
        """3 stopped, 1 some job failed or is unfinished (or its image is saved but the
        source's after-save step did not record it), 0 every job done (README)."""
        if self.stop_reason:
            return EXIT_STOPPED
        return EXIT_FAILED if self.failed or self.pending or self.unrecorded else EXIT_OK


@dataclass
class PoolView:
    """What the live display shows beyond the journal's counts (written by the runner).
    Times are seconds on the runner's clock."""

    in_flight: dict[str, int]  # job id -> attempt number
    recent: list[str]
    pause_until: float = 0.0
    pause_reason: str | None = None
    started: float = 0.0
    finished_at: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=20))


class _Stopped(Exception):
    """The batch stopped before this job's next attempt could start."""


class _Capped(Exception):
    """The job's cost group reached its ceiling: the job (and the rest of its group) waits."""

    def __init__(self, group: str, limit: float) -> None:
        super().__init__(
            f"cost cap of {group} reached (${limit:.2f}): not started, so as not to pass it"
        )


class _Unreadable(Exception):
    """A reference image of the job cannot be read (it changed since planning)."""


class Runner:
    """Runs the jobs of one open session. Clock and sleep are injected for tests.

    ``provider`` and ``info`` serve the jobs of provider ``info.name``; ``others`` maps the
    names of any other providers the session's jobs name to theirs. ``after_save(source_name)``
    gives the source's after-save step (or None). ``saved(image, references)`` is called in a
    worker thread once each image is saved and journaled (the contact sheet makes its
    thumbnails then: :func:`imagegen.report.prepare_thumbnails`); it must not raise.
    ``budget`` is the run's ceiling and ``caps`` the cost groups' (:mod:`.budget`). Its
    :attr:`recorder` saves and journals the images (:meth:`Recorder.bound` lends it to another
    executor of the session).
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
        saved: SavedHook | None = None,
        caps: GroupCaps | None = None,
    ) -> None:
        self.journal = journal
        self._providers = {info.name: (provider, info), **(others or {})}
        self.gate = gate
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.notify = notify or (lambda _line: None)
        self.view = PoolView({}, [], started=clock())
        self.budget = budget
        self.caps = caps or GroupCaps()
        self.references = references or ReferenceCache()
        self.outputs = outputs or Outputs(
            journal.session_id, journal.sessions_dir / f"{journal.session_id}-kept"
        )
        self.breaker = Breaker(self.policy)
        self.recorder = Recorder(
            journal,
            self.outputs,
            lambda name: self._providers[name][1],
            after_save or (lambda _name: None),
            self._finished,
            self.stop,
            notify=self.notify,
            saved=saved,
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
                    await self._prefetch(job_id)
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
            sum(counts[status] for status in RUNNABLE),
            counts["skipped"],
            self.stop_reason,
            None if self.budget is None else round(self.budget.spent, 6),
            unrecorded(self.journal.state.jobs.values()),
        )

    async def _prefetch(self, job_id: str) -> None:
        """Read a job's reference images before a worker takes the job, so that the read a job
        makes inside its call slot (which keeps calls in plan order) is a cache hit and holds
        the slot for no file work. A file that cannot be read is left for the job's own
        attempt to record."""
        paths = self.journal.job(job_id).job.references
        if paths and self.references.cached(paths) is None:
            with contextlib.suppress(OSError, ValueError):
                await anyio.to_thread.run_sync(self.references.load, paths)

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
        """One job: each of its variants (one unless ``--variants``), one after another."""
        label = f"[{job_id}] {self.journal.job(job_id).job.title}"
        while await self._run_variant(job_id, label) and not self.stop_reason:
            pass

    async def _run_variant(self, job_id: str, label: str) -> bool:
        """Make the job's next image; True when the job wants another variant."""
        state = self.journal.job(job_id)
        if state.kept:
            return await self.recorder.place_kept(state, label)
        job = state.job
        kept_output = state.variant_outputs[0] if state.variant_outputs else None
        request = ImageRequest(
            job.model, job.prompt, (), job.quality, job.aspect, self.timeout, state.resume
        )

        async def before_sleep(error: ProviderError, wait: float) -> None:
            self.view.in_flight.pop(job_id, None)
            now = self.journal.job(job_id)
            await self.journal.update(
                job_id,
                JobUpdate(
                    status="retry", output=kept_output, error=f"{error}", error_kind=error.kind
                ),
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
            await self.journal.update(job_id, JobUpdate(status="pending", output=kept_output))
            return False
        except _Capped as exc:
            self.view.in_flight.pop(job_id, None)
            await self.journal.update(
                job_id,
                JobUpdate(
                    status="pending", output=kept_output, error=str(exc), error_kind="cost_cap"
                ),
            )
            self._finished(f"⊘ {label} → {exc}")
            return False
        except _Unreadable as exc:
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
            return False
        except BatchStop as exc:
            self.stop(str(exc))
            self.view.in_flight.pop(job_id, None)
            now = self.journal.job(job_id)
            await self.journal.update(
                job_id,
                JobUpdate(
                    status="pending", output=kept_output, error=str(exc), error_kind=exc.kind
                ),
                _attempt(now, exc, None),
            )
            return False
        except ProviderError as exc:
            self.view.in_flight.pop(job_id, None)
            now = self.journal.job(job_id)
            reason = exc.reason if isinstance(exc, NoImage) else None
            await self.journal.update(
                job_id,
                JobUpdate(
                    status="failed",
                    output=kept_output,
                    error=str(exc),
                    error_kind=exc.kind,
                    completed=now_iso(),
                    finish_reason=reason,
                    resume=None,
                ),
                _attempt(now, exc, None),
            )
            self._finished(f"✗ {label} → {exc.kind}: {reason or exc}")
            return False
        with anyio.CancelScope(shield=True):  # a paid image is saved and recorded whole
            return await self._complete(job_id, answer, label)
        raise AssertionError("unreachable: a shielded scope does not swallow")  # for mypy

    async def _attempt(self, job_id: str, request: ImageRequest) -> tuple[Generation, Path, float]:
        provider, info = self._providers[self.journal.job(job_id).job.provider]
        if info.local:  # drawn on this machine: no call slot, start turn, budget or breaker
            if self.stop_reason:
                raise _Stopped
            if not request.references and self.journal.job(job_id).job.references:
                request = replace(request, references=await self._references(job_id))
            return await self._call(job_id, request, provider, info, ())
        async with self.gate.slots:
            if self.stop_reason:
                raise _Stopped
            # Read inside the slot: workers take slots in the order jobs were handed out, so a
            # job whose references are still being read is not overtaken by the next one
            # (with --concurrency 1 the jobs run strictly in plan order). A cached read costs
            # nothing; a first read of a few MB, milliseconds against a call's seconds.
            if not request.references and self.journal.job(job_id).job.references:
                request = replace(request, references=await self._references(job_id))
            await self.gate.wait_turn()
            # No await between this check and the reservation below: the first call's real
            # cost decides what every later call holds.
            while self.budget is not None and self.budget.must_wait():
                await self._settled.wait()
            if self.stop_reason:
                raise _Stopped
            job = self.journal.job(job_id).job
            price = info.estimate(job.model, job.quality, job.aspect, len(job.references))
            holds = await self._reserve_group(job.cost_group, price)
            if self.budget is not None:
                held = self.budget.reservation(price)
                if not self.budget.reserve(held):
                    for budget, amount in holds:
                        budget.settle(amount, 0.0)
                    self.stop(f"budget reached (--max-cost ${self.budget.limit:.2f})")
                    raise _Stopped
                holds = (*holds, (self.budget, held))
            return await self._call(job_id, request, provider, info, holds)

    async def _reserve_group(
        self, group: str | None, price: float
    ) -> tuple[tuple[Budget, float], ...]:
        """Hold the job's share of its cost group's ceiling, or raise _Capped (the group
        stops). Waits for the group's calls in flight first when they leave no room: their
        real cost decides whether the next one fits."""
        cap = self.caps.get(group)
        if cap is None or group is None:
            return ()
        while True:
            if group in self.caps.stopped:
                raise _Capped(group, cap.limit)
            held = cap.reservation(price)
            if cap.reserve(held):
                return ((cap, held),)
            if not cap.in_flight:
                self.caps.stopped.add(group)
                self.notify(f"cost cap reached for {group} (${cap.limit:.2f}): it stops here")
                raise _Capped(group, cap.limit)
            await self._settled.wait()

    async def _call(
        self,
        job_id: str,
        request: ImageRequest,
        provider: ImageProvider,
        info: ProviderInfo,
        holds: tuple[tuple[Budget, float], ...],
    ) -> tuple[Generation, Path, float]:
        state = self.journal.job(job_id)
        job = state.job
        price = info.estimate(job.model, job.quality, job.aspect, len(job.references))
        attempt = state.attempts + 1
        planned = self.outputs.plan(job, datetime.now(), len(state.variant_outputs) + 1)
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
            called = self.clock()
            try:
                generation = await provider.generate(request, checkpoint)
            except BatchStop as exc:
                self.stop(str(exc))  # before the slot is released: nothing new may start
                raise
            except ProviderError as exc:
                if not info.local:
                    await self._after_failure(exc)
                raise
            if not info.local:  # a local draw says nothing of the service or its pace
                self.breaker.success()
                self.view.durations.append(self.clock() - called)
            cost = info.cost(
                job.model, job.quality, job.aspect, len(job.references), generation.usage
            )
            billed = True
            return generation, planned, cost
        except BaseException:
            self.outputs.release(planned)
            raise
        finally:
            if holds:
                for budget, amount in holds:
                    budget.settle(amount, cost, price if billed else None)
                self._settled.set()
                self._settled = anyio.Event()

    async def _references(self, job_id: str) -> tuple[Reference, ...]:
        paths = self.journal.job(job_id).job.references
        refs = self.references.cached(paths)
        if refs is not None:
            return refs
        try:
            return await anyio.to_thread.run_sync(self.references.load, paths)
        except (OSError, ValueError) as exc:
            raise _Unreadable(str(exc)) from exc

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
    ) -> bool:
        generation, planned, cost = answer
        self.view.in_flight.pop(job_id, None)
        return await self.recorder.complete(job_id, generation, planned, cost, label)

    def _finished(self, line: str) -> None:
        self.view.finished_at.append(self.clock())
        self.tell(line)

    def tell(self, line: str) -> None:
        """Show ``line`` among the display's recent outcomes without counting it in the pool's
        pace: a batch's result (a fold saves hundreds in a second; the service set its pace)."""
        self.view.recent.insert(0, line)
        del self.view.recent[5:]
        self.notify(line)


def unrecorded(states: Iterable[JobState]) -> int:
    """Jobs whose source's after-save step is still to run or did not succeed."""
    return sum(1 for js in states if js.unrecorded)


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
