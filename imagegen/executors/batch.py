"""The Batch API executor: a session's jobs sent as batches at half price, folded back into the
same journal as the online pool's (issue 15).

Flow of a run, each step journaled before the next depends on it:

1. **Settle** what an earlier process left: a job ``submitted`` in no live batch returns to
   pending (its batch was never created: the create call only follows the record); a batch
   recorded ``creating`` (the process may have died between the create call and its answer)
   is looked up by its display name (session id + shard) and adopted if the service has it,
   else created then. So a crash at any point never submits the same jobs twice.
2. **Submit** the pending jobs: their output folders checked first (a broken destination
   stops the run with nothing paid, as online); each distinct reference uploaded once (by
   content, journaled: :mod:`.uploads`), one JSONL line per job keyed by its id written to
   disk shard by shard within the API's limits (:mod:`.batch_plan`), each shard's file
   uploaded by streaming; then its jobs are journaled ``submitted``, its batch ``creating``,
   and only then created. Only jobs of this provider that make one image go (a job of a local
   provider, one with ``--variants``, one whose paid image waits in the spool: the online
   pool's, :meth:`BatchRunner.takes`). ``--max-cost`` and the cost groups' caps reserve a
   whole shard before it is sent: jobs past the budget stay pending, and a group whose next
   job does not fit stops (its jobs stay pending, ``cost_cap``) while the other groups go on,
   as online (:func:`.batch_plan.affordable`); a job still in a batch an earlier run sent
   holds its share of its group's cap from the start.
3. **Follow** every live batch: polled with backoff (``--batch-poll``), each poll journaled
   (``--status`` shows it). A batch that succeeds is collected; one that fails, expires or is
   cancelled, or is still pending past ``--batch-deadline`` (then it is cancelled), hands its
   jobs back: pending again, for the online pool in the same run (or, with ``--no-fallback``,
   the run stops and says so).
4. **Collect**: the result file is streamed to disk (a 503 is retried), read line by line,
   each line matched to its job by key whatever the order, each image checked and saved
   exactly as an online result, by the session's own :class:`~.recording.Recorder` (so the
   source's after-save step and the contact sheet's thumbnails follow), each failure mapped to
   the online failure kinds and sent back to pending or to failed by the online retry policy.
   A result's planned output path is journaled before its image is written, so a crash in
   the middle of the fold adopts the image already written instead of writing it twice.

Ctrl-C stops waiting: the batches keep running on the service and ``--resume`` collects them.
The clock (Unix seconds) and the sleep are injected: tests drive day-long batches on the
emulator's ``ManualClock`` with no real wait.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import anyio

from ..errors import BatchStop, FileGone, ProviderError, ServerError
from ..journal import Journal, now_iso
from ..model import BATCH_DONE, Attempt, BatchChange, BatchRecord, Job, JobUpdate, SessionUpdate
from ..outputs import Outputs, StorageError, bytes_bound, render_target
from ..providers import ProviderInfo
from ..providers.batch import BatchService, BatchStatus
from ..references import ReferenceCache
from ..retry import RetryPolicy, call_with_retries
from .batch_input import BatchInput, ShardFile, shard_path
from .batch_plan import (
    DEFAULT_LIMITS,
    ShardLimits,
    affordable,
    display_name,
    iso_seconds,
    poll_waits,
    seconds_of,
)
from .batch_results import ResultFolder
from .budget import Budget, GroupCaps
from .limiter import Sleep
from .recording import Recorder
from .uploads import ReferenceUploads

T = TypeVar("T")

#: A job's history outcome when its batch ended without answering it (no charge).
ABANDONED = "batch gave no result"
#: Seconds an uploaded reference must outlive the batch's deadline by (it is read when the
#: service runs the request, which may be the deadline's last minute).
REFERENCE_MARGIN = 3600.0


#: ``--batch-poll`` and ``--batch-deadline`` by default (seconds): Google completes most
#: batches well within 24 h and promises it (notes, "Gemini Batch API").
DEFAULT_POLL = 30.0
DEFAULT_DEADLINE = 86_400.0


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """How batches run: seconds between polls (growing, :func:`.batch_plan.poll_waits`),
    seconds a batch may stay unfinished before it is cancelled, whether jobs a batch could
    not finish go to the online pool, and shard limits. References go by URI when the run
    uploads them (the ``uploads`` the runner is given)."""

    poll: float = DEFAULT_POLL
    deadline: float = DEFAULT_DEADLINE
    fallback: bool = True
    limits: ShardLimits = DEFAULT_LIMITS


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Jobs handed back (pending again: for the online pool unless ``--no-fallback``), and
    why the run stopped early (None if it did not)."""

    handed_back: tuple[str, ...]
    stop_reason: str | None


@dataclass
class _Held:
    """USD held for each submitted job under ``--max-cost`` and its cost group's cap (each
    ceiling and its amount), settled by its result."""

    amounts: dict[str, tuple[tuple[Budget, float], ...]] = field(default_factory=dict)


class BatchRunner:
    """Runs a session's jobs of provider ``info`` through its Batch API ``service``.

    Images are saved and journaled by ``recorder``, the online pool's (bound to this
    executor's ``finished`` lines and stop: :meth:`~.recording.Recorder.bound`), so a batch
    result gets the same events and after-save step as an online one, and its thumbnails once
    its shard is folded; ``uploads`` (None with ``--inline-references``) sends references by
    URI; ``work_dir`` holds the shards' input and result files while they are needed.
    ``budget`` is the run's ceiling and ``caps`` the cost groups' (shared with the online pool).
    ``clock`` is the wall clock in Unix seconds (batch times, deadlines, file expiry),
    ``sleep`` the wait between polls.
    """

    def __init__(
        self,
        journal: Journal,
        service: BatchService,
        info: ProviderInfo,
        recorder: Recorder,
        settings: BatchSettings,
        *,
        work_dir: Path,
        finished: Callable[[str], None] | None = None,
        uploads: ReferenceUploads | None = None,
        policy: RetryPolicy | None = None,
        budget: Budget | None = None,
        caps: GroupCaps | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = anyio.sleep,
        notify: Callable[[str], None] | None = None,
        references: ReferenceCache | None = None,
    ) -> None:
        if info.batch_cost is None or info.batch_estimate is None:
            raise ValueError(f"{info.name} has no Batch API prices")
        self.journal = journal
        self.service = service
        self.info = info
        self.notify = notify or (lambda _line: None)
        # The saved hook (contact-sheet thumbnails) runs once a shard is folded, not per
        # image: ~8 ms of decoding each would hold up journaling 10,000 results by minutes.
        self.recorder = recorder.bound(
            finished=finished or self.notify, stop=self.stop, saved_hook=False
        )
        self.outputs = recorder.outputs
        self.settings = settings
        self.work_dir = work_dir
        self.uploads = uploads
        self.policy = policy or RetryPolicy()
        self.budget = budget
        self.caps = caps or GroupCaps()
        self.clock = clock
        self.sleep = sleep
        self.stop_reason: str | None = None
        self.halted = False
        self._handed_back: list[str] = []
        self._held = _Held()
        self._nap: anyio.CancelScope | None = None
        self._batch_estimate = info.batch_estimate
        self.input = BatchInput(
            journal,
            service,
            settings.limits,
            work_dir,
            uploads=uploads,
            min_life=settings.deadline + REFERENCE_MARGIN,
            retrying=self._retrying,
            references=references,
        )
        self.folder = ResultFolder(
            journal,
            service,
            info,
            self.recorder,
            self.policy,
            uploads=uploads,
            settle=self._settle_budget,
            hand_back=self._handed_back.append,
            stop=self.stop,
            halted=lambda: self.halted,
            saved=recorder.saved,
        )

    # -- control ---------------------------------------------------------------------------

    def stop(self, reason: str, *, halt: bool = True) -> None:
        """Send nothing new; with ``halt`` (Ctrl-C, a stop answer, a broken destination) stop
        waiting too, else (the budget, ``--no-fallback``) follow the batches already sent to
        their end. Batches on the service keep running either way."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.notify(f"stopping: {reason}")
        if halt:
            self.halted = True
            if self._nap is not None:
                self._nap.cancel()

    async def run(self, job_ids: Sequence[str]) -> BatchResult:
        """Settle, submit ``job_ids`` (those pending), follow every live batch to its end.

        Returns the jobs handed back for the online pool. Raises JournalError if the journal
        cannot be written.
        """
        await self._settle()
        todo: list[str] = []
        for job_id in job_ids:
            state = self.journal.job(job_id)
            if state.status not in ("pending", "retry"):
                continue
            if self.takes(state.kept, state.job):
                todo.append(job_id)
            else:
                self._handed_back.append(job_id)
        if todo and not self.stop_reason:
            await self._submit(todo)
        await self._follow()
        if not self._live():
            with contextlib.suppress(OSError):  # gone, or still holding a shard: left as is
                await anyio.Path(self.work_dir).rmdir()
        return BatchResult(tuple(dict.fromkeys(self._handed_back)), self.stop_reason)

    def takes(self, kept: str | None, job: Job) -> bool:
        """Whether a job goes in a batch: one image of this provider to make. A paid image in
        the spool is placed without a call, a job of another provider (a local one drawn on
        this machine) and one that makes several variants go to the online pool."""
        return kept is None and job.provider == self.info.name and job.variants == 1

    # -- 1. settle ---------------------------------------------------------------------------

    def _live(self) -> list[BatchRecord]:
        return [r for r in self.journal.state.batches.values() if r.state not in BATCH_DONE]

    async def _settle(self) -> None:
        live = self._live()
        in_live = {job_id for record in live for job_id in record.job_ids}
        orphans = [
            js.id
            for js in self.journal.state.jobs.values()
            if js.status == "submitted" and js.id not in in_live
        ]
        if orphans:  # submitted, then the process died before the batch was recorded
            await self.journal.update_many(
                (job_id, JobUpdate(status="pending", output=None), None) for job_id in orphans
            )
        for job_id in in_live:  # sent by an earlier run: their groups' caps hold them again
            if self.journal.job(job_id).status == "submitted":
                self._hold(job_id, budget=False)
        for record in live:
            if self.halted:
                return
            if record.state == "creating":
                await self._create(record, look_first=True)

    # -- 2. submit ---------------------------------------------------------------------------

    async def _submit(self, todo: list[str]) -> None:
        if not await self._destinations_ready(todo):
            return
        by_model: dict[str, list[str]] = {}
        for job_id in todo:
            by_model.setdefault(self.journal.job(job_id).job.model, []).append(job_id)
        for model, ids in by_model.items():
            ids = await self._afford(ids)
            if not ids:
                if self.stop_reason:  # the budget: no model's jobs fit any more
                    break
                continue  # every job of this model's groups is capped: the next model's may go
            try:
                refs = await self.input.resolve(ids)
            except ProviderError as exc:
                self.stop(f"cannot upload the reference images ({exc}); --resume later")
                return
            if self.halted:
                return
            first = max(self.journal.state.batches, default=-1) + 1
            try:
                shards = await anyio.to_thread.run_sync(self.input.write, ids, refs, model, first)
            except OSError as exc:  # nothing sent yet: its jobs stay pending
                self.stop(
                    f"cannot write the batch input in {self.work_dir} ({exc.strerror or exc}); "
                    "free space, then --resume"
                )
                return
            for shard in shards:
                if self.halted:
                    await anyio.to_thread.run_sync(_unlink, shard.path)
                    continue
                await self._send(shard)

    async def _destinations_ready(self, todo: list[str]) -> bool:
        """Before anything is sent: each folder the jobs' images go to can be made and written
        and has room for one image, as the online pool checks before each call
        (:meth:`imagegen.outputs.Outputs.check`). A broken one stops the run, nothing paid."""
        now = datetime.now()
        folders: dict[Path, int] = {}
        for job_id in todo:
            job = self.journal.job(job_id).job
            need = bytes_bound(self.info.pixel_size(job.model, job.quality, job.aspect))
            folder = render_target(job, now).parent
            folders[folder] = max(folders.get(folder, 0), need)
        try:
            await anyio.to_thread.run_sync(_check_all, self.outputs, folders)
        except StorageError as exc:
            self.stop(f"{exc} (nothing was sent or paid for its jobs; fix it, then --resume)")
            return False
        return True

    async def _afford(self, ids: list[str]) -> list[str]:
        """The jobs whose whole shard fits under ``--max-cost`` and their cost groups' caps;
        the rest stay pending (a capped group's with ``cost_cap``, as online)."""
        holds = []
        for job_id in ids:
            job = self.journal.job(job_id).job
            price = self._estimate(job)
            cap = self.caps.get(job.cost_group)
            held = self.budget.reservation(price) if self.budget is not None else 0.0
            holds.append((held, job.cost_group, cap.reservation(price) if cap else 0.0))
        room = None
        if self.budget is not None:
            room = self.budget.limit - self.budget.spent - self.budget.reserved
        rooms = {
            group: cap.limit - cap.spent - cap.reserved
            for group, cap in self.caps.budgets.items()
            if group not in self.caps.stopped
        }
        rooms.update(dict.fromkeys(self.caps.stopped, -1.0))  # stopped: nothing fits
        fits = affordable(holds, room, rooms)
        for group in sorted(fits.groups - self.caps.stopped):
            self.caps.stopped.add(group)
            limit = self.caps.budgets[group].limit
            self.notify(f"cost cap reached for {group} (${limit:.2f}): it stops here")
        if fits.capped:
            await self._capped([ids[n] for n in fits.capped])
        if fits.budget_cut:
            assert self.budget is not None
            left = len(ids) - len(fits.sent) - len(fits.capped)
            self.stop(
                f"budget reached (--max-cost ${self.budget.limit:.2f}): {left} job(s) not sent",
                halt=False,
            )
        return [ids[n] for n in fits.sent]

    async def _capped(self, job_ids: list[str]) -> None:
        """Jobs whose cost group reached its cap: pending, not sent (nor handed back)."""
        updates = []
        for job_id in job_ids:
            job = self.journal.job(job_id).job
            cap = self.caps.budgets[job.cost_group or ""]
            error = (
                f"cost cap of {job.cost_group} reached (${cap.limit:.2f}): not sent, so as "
                "not to pass it"
            )
            updates.append(
                (job_id, JobUpdate(status="pending", error=error, error_kind="cost_cap"))
            )
            self.recorder.finished(f"⊘ [{job_id}] {job.title} → {error}")
        await self.journal.update_many((job_id, update, None) for job_id, update in updates)

    def _estimate(self, job: Job) -> float:
        return self._batch_estimate(job.model, job.quality, job.aspect, len(job.references))

    def _hold(self, job_id: str, *, budget: bool = True) -> None:
        """Reserve a submitted job's estimate under its group's cap and (``budget``) the run's
        budget until its result settles it."""
        job = self.journal.job(job_id).job
        price = self._estimate(job)
        holds: list[tuple[Budget, float]] = []
        ceilings = [self.caps.get(job.cost_group), self.budget if budget else None]
        for ceiling in ceilings:
            if ceiling is not None:
                amount = ceiling.reservation(price)
                ceiling.reserved += amount
                ceiling.in_flight += 1
                holds.append((ceiling, amount))
        self._held.amounts[job_id] = tuple(holds)

    def _settle_budget(self, job_id: str, cost: float, billed: bool) -> None:
        holds = self._held.amounts.pop(job_id, ())
        price = self._estimate(self.journal.job(job_id).job) if billed else None
        for ceiling, amount in holds:
            ceiling.settle(amount, cost, price)
        if self.budget is not None and all(c is not self.budget for c, _ in holds):
            self.budget.spent += cost  # a batch an earlier run sent: paid all the same

    async def _send(self, shard: ShardFile) -> None:
        """Upload a shard's input file, journal its jobs submitted and its batch creating,
        then create it."""
        try:
            uploaded = await self._retrying(
                lambda: self.service.upload_file(
                    shard.path, "application/jsonl", f"imagegen-input-{shard.shard:03d}"
                )
            )
        except ProviderError as exc:
            self.stop(f"cannot upload batch input {shard.path.name} ({exc}); --resume later")
            return
        for job_id in shard.job_ids:
            self._hold(job_id)
        started = now_iso()
        await self.journal.update_many(
            (
                job_id,
                JobUpdate(
                    status="submitted",
                    attempts=self.journal.job(job_id).attempts + 1,
                    started=started,
                    output=None,
                    error=None,
                    error_kind=None,
                ),
                None,
            )
            for job_id in shard.job_ids
        )
        name = display_name(self.journal.session_id, shard.shard)
        await self._record(
            BatchChange(
                shard=shard.shard,
                display_name=name,
                job_ids=shard.job_ids,
                state="creating",
                model=shard.model,
                input_file=uploaded.name,
            )
        )
        self.notify(
            f"batch {name}: {len(shard.job_ids)} jobs, input {shard.size / 1e6:.1f} MB uploaded"
        )
        await self._create(self.journal.state.batches[shard.shard])

    async def _create(self, record: BatchRecord, *, look_first: bool = False) -> None:
        """Create a recorded batch, unless the service already has it under its display name
        (``look_first``: an earlier create whose answer was lost; always after a create that
        failed in a way that leaves it unknown whether the service took it). A create that
        fails for good hands the batch's jobs back."""
        for _ in range(self.policy.max_attempts):
            found = await self._find(record) if look_first else None
            look_first = True
            if found is not None:
                await self._created(record, found, adopted=True)
                return
            if record.input_file is None:
                again = await self._reupload(record)
                if again is None:
                    return
                record = again
            try:
                assert record.input_file is not None
                status = await self.service.create_batch(
                    record.model, record.input_file, record.display_name
                )
            except FileGone:
                again = await self._reupload(record, gone=True)
                if again is None:
                    return
                record = again
                continue
            except BatchStop as exc:
                await self._abandon(record, f"create failed: {exc}", stop=str(exc))
                return
            except ProviderError as exc:
                if exc.retryable:
                    self.notify(f"batch {record.display_name}: create failed ({exc}); checking")
                    await self._nap_for(self.policy.wait_for(exc, 1))
                    if self.halted:
                        return
                    continue
                await self._abandon(record, f"create failed: {exc}")
                return
            await self._created(record, status, adopted=False)
            return
        await self._abandon(record, "create kept failing")

    async def _find(self, record: BatchRecord) -> BatchStatus | None:
        try:
            found = await self._retrying(lambda: self.service.find_batches(record.display_name))
        except ProviderError as exc:
            self.notify(f"batch {record.display_name}: cannot list batches ({exc})")
            return None
        return found[0] if found else None

    async def _created(self, record: BatchRecord, status: BatchStatus, *, adopted: bool) -> None:
        # Our clock, not the service's: the deadline is measured on ours (a clock that is
        # off by hours must not cancel a batch, or keep one forever). A batch found after a
        # crash gets its deadline from when it was found.
        created = self.clock()
        await self._record(
            BatchChange(
                shard=record.shard,
                name=status.name,
                state=status.state,
                created=iso_seconds(created),
            )
        )
        how = "found on the service (created before a crash)" if adopted else "created"
        self.notify(f"batch {record.display_name}: {how} as {status.name}")

    async def _reupload(self, record: BatchRecord, *, gone: bool = False) -> BatchRecord | None:
        """The shard's input file again (rebuilt if it is not on disk any more); None when it
        cannot be made or uploaded now: the run stops, the batch stays "creating" with its
        jobs submitted, and ``--resume`` tries again (as when the first upload fails)."""
        path = shard_path(self.work_dir, record.shard)
        try:
            if gone or not await anyio.Path(path).exists():
                ids = [j for j in record.job_ids if self.journal.job(j).status == "submitted"]
                refs = await self.input.resolve(ids)
                rebuilt = await anyio.to_thread.run_sync(
                    self.input.write, ids, refs, record.model, record.shard
                )
                if len(rebuilt) != 1:
                    raise ServerError("the shard's input does not fit one file any more")
                path = rebuilt[0].path
            uploaded = await self._retrying(
                lambda: self.service.upload_file(
                    path, "application/jsonl", f"imagegen-input-{record.shard:03d}"
                )
            )
        except (ProviderError, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            self.stop(f"cannot upload batch input {path.name} ({why}); --resume later")
            return None
        await self._record(BatchChange(shard=record.shard, input_file=uploaded.name))
        return self.journal.state.batches[record.shard]

    # -- 3. follow ---------------------------------------------------------------------------

    async def _follow(self) -> None:
        waits = poll_waits(self.settings.poll)
        while not self.halted:
            live = [r for r in self._live() if r.name is not None]
            if not live:
                return
            for record in live:
                if self.halted:
                    return
                await self._poll(record)
            if any(r.name is not None for r in self._live()):
                await self._nap_for(next(waits))

    async def _poll(self, record: BatchRecord) -> None:
        assert record.name is not None
        name = record.name
        try:
            status = await self._retrying(lambda: self.service.batch_status(name))
        except ProviderError as exc:
            if exc.retryable:
                self.notify(f"batch {record.display_name}: poll failed ({exc}); trying later")
                return
            await self._abandon(record, f"the service no longer answers for it ({exc})")
            return
        now = self.clock()
        changed = status.state != record.state
        await self._record(
            BatchChange(
                shard=record.shard,
                state=status.state,
                last_poll=iso_seconds(now),
                polls=record.polls + 1,
                error=status.error,
            )
        )
        if changed:
            self.notify(f"batch {record.display_name}: {status.state}")
        if status.state == "succeeded":
            await self._collect(self.journal.state.batches[record.shard], status)
        elif status.ended:
            why = f"batch {name} ended {status.state}" + (
                f" ({status.error})" if status.error else ""
            )
            await self._abandon(self.journal.state.batches[record.shard], why)
        else:
            created = seconds_of(record.created)
            if created is not None and now - created > self.settings.deadline:
                try:
                    await self._retrying(lambda: self.service.cancel_batch(name))
                except ProviderError as exc:
                    # Not cancelled, it may still answer: running its jobs online now could
                    # pay for them twice. The next poll sees its end or cancels again.
                    self.notify(f"batch {record.display_name}: cannot cancel it ({exc})")
                    return
                await self._abandon(
                    self.journal.state.batches[record.shard],
                    f"batch {name} still {status.state} after {self.settings.deadline:g} s "
                    "(--batch-deadline): cancelled",
                )

    async def _abandon(self, record: BatchRecord, why: str, *, stop: str | None = None) -> None:
        """The batch will give no results: its waiting jobs return to pending, handed back for
        the online pool (or, with ``--no-fallback``, the run stops and says why)."""
        ids = [j for j in record.job_ids if self.journal.job(j).status == "submitted"]
        ended = now_iso()
        await self.journal.update_many(
            (
                job_id,
                JobUpdate(status="pending", output=None, error=why, error_kind=None),
                Attempt(
                    attempt=self.journal.job(job_id).attempts,
                    started=self.journal.job(job_id).started,
                    ended=ended,
                    outcome=ABANDONED,
                    error=why,
                ),
            )
            for job_id in ids
        )
        for job_id in ids:
            self._settle_budget(job_id, 0.0, billed=False)
        await self._record(BatchChange(shard=record.shard, state="abandoned", error=why))
        self.notify(f"batch {record.display_name}: {why}; {len(ids)} job(s) handed back")
        if stop is not None:
            self.stop(stop)
        elif ids and not self.settings.fallback:
            self.stop(f"{why}; {len(ids)} job(s) not run (--no-fallback)", halt=False)
        self._handed_back.extend(ids)
        await self._discard_files(record)

    # -- 4. collect --------------------------------------------------------------------------

    async def _collect(self, record: BatchRecord, status: BatchStatus) -> None:
        if status.results_file is None:
            await self._abandon(record, f"batch {status.name} succeeded without a result file")
            return
        results = self.work_dir / f"shard-{record.shard:03d}-results.jsonl"
        if not await anyio.Path(results).exists():
            self.notify(f"batch {record.display_name}: downloading results")
            try:
                await anyio.Path(self.work_dir).mkdir(parents=True, exist_ok=True)
                await self._retrying(
                    lambda: self.service.download_results(status.results_file or "", results)
                )
            except FileGone:
                await self._abandon(record, f"the results of {status.name} expired (48 h)")
                return
            except ProviderError as exc:
                self.notify(f"batch {record.display_name}: download failed ({exc}); later")
                return
        if record.results_file != status.results_file:
            await self._record(BatchChange(shard=record.shard, results_file=status.results_file))
        waiting = {j for j in record.job_ids if self.journal.job(j).status == "submitted"}
        answered = await self.folder.fold(results, waiting)
        if self.halted:  # Ctrl-C or a broken destination: --resume folds the rest
            return
        missing = [j for j in record.job_ids if j in waiting and j not in answered]
        if missing:
            error = ServerError(f"batch {status.name} returned no result for this job")
            for job_id in missing:
                await self.folder.failed(job_id, error)
        await self._record(BatchChange(shard=record.shard, state="collected"))
        done = sum(1 for j in record.job_ids if self.journal.job(j).status == "completed")
        self.notify(f"batch {record.display_name}: collected, {done} of {len(record.job_ids)} done")
        await self.folder.after_saves(record.job_ids)
        await self._discard_files(record, results)

    # -- helpers -----------------------------------------------------------------------------

    async def _record(self, change: BatchChange) -> None:
        await self.journal.update_session(SessionUpdate(batch=change))

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        return await call_with_retries(call, self.policy, sleep=self.sleep, clock=self.clock)

    async def _nap_for(self, seconds: float) -> None:
        """Wait between polls; :meth:`stop` ends the wait at once."""
        with anyio.CancelScope() as scope:
            self._nap = scope
            try:
                await self.sleep(seconds)
            finally:
                self._nap = None

    async def _discard_files(self, record: BatchRecord, *more: Path) -> None:
        paths = [shard_path(self.work_dir, record.shard), *more]
        await anyio.to_thread.run_sync(_unlink_all, paths)


def _check_all(outputs: Outputs, folders: dict[Path, int]) -> None:
    """Check each folder (blocking: a worker thread); raises the first StorageError."""
    for folder, need in folders.items():
        if outputs.needs_check(folder, need):
            outputs.check(folder, need)


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        _unlink(path)


__all__ = ["BatchResult", "BatchRunner", "BatchSettings", "ShardFile"]
