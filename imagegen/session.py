"""Running an open session: provider, journal writer, recovery, pool, display, and the summary.

The shell around the executors: it opens the provider named by the session (or the project's
emulator offline), records who runs the session, settles what a crash left, runs the jobs
under Ctrl-C handling (through the Batch API first when the session was started with
``--batch``, then the online pool for what the batches hand back), and prints the summary and
the contact sheet's path. Online requests send their reference images by URI once uploaded
when the provider has a file store, unless ``--inline-references``. The command line
(:mod:`imagegen.cli`) calls :func:`run_session` with a :class:`~imagegen.journal.Journal` it
has created or opened (and whose lock it holds).
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, nullcontext
from dataclasses import dataclass, replace
from typing import Protocol

import anyio
from rich.console import Console

from . import providers, sources
from .errors import InputError, unwrap_group
from .executors.batch import BatchRunner, BatchSettings
from .executors.budget import Budget
from .executors.limiter import Limits, Sleep, StartGate
from .executors.pool import Runner, RunResult
from .executors.uploads import HeaderReferences, ReferenceUploads, UploadingProvider
from .journal import Journal, current_owner
from .model import RUNNABLE, JobState, SessionState, SessionUpdate
from .outputs import Outputs
from .progress import live_display, plain_printer, render, view_of
from .providers import ProviderInfo
from .providers.base import ImageProvider
from .providers.batch import BatchService, FileStore
from .recovery import prepare_retry, recover_interrupted
from .report import write_report
from .retry import RetryPolicy

OFFLINE_KEY = "offline-emulator-key"


@dataclass(frozen=True, slots=True)
class Settings:
    """How to run: pool limits, retry policy, per-attempt timeout (s), where the model is."""

    limits: Limits
    policy: RetryPolicy
    timeout: float = 90.0
    offline: bool = False
    offline_latency: float = 1.0
    live: bool = False
    max_cost: float | None = None
    fsync: bool = True
    batch: BatchSettings | None = None  # --batch: through the Batch API first
    upload_references: bool = True  # False: --inline-references
    clock: Callable[[], float] = time.time  # wall clock (batches, file expiry), Unix seconds
    sleep: Sleep | None = None  # waits between batch polls and retries (None: anyio.sleep)


def api_key(info: ProviderInfo, offline: bool) -> str:
    """The provider's key from its environment variables (in its SDK's order); InputError
    naming them when none is set. Offline runs need none."""
    if offline:
        return OFFLINE_KEY
    for name in info.key_vars:
        if value := os.environ.get(name, "").strip():
            return value
    raise InputError(
        f"no API key for {info.title}: set {' or '.join(reversed(info.key_vars))}, "
        "or pass --offline to use the built-in emulator"
    )


def provider_names(main: str, jobs: Iterable[JobState]) -> list[str]:
    """The providers a session uses: its own, then any other its jobs name."""
    return list(dict.fromkeys([main, *(js.job.provider for js in jobs)]))


def session_providers(state: SessionState) -> list[str]:
    return provider_names(str(state.config.get("provider", "gemini")), state.jobs.values())


def keys_for(names: Iterable[str], offline: bool) -> dict[str, str]:
    """Each provider's key, read before anything runs; InputError names a missing one."""
    return {name: api_key(providers.get(name), offline) for name in names}


async def run_session(
    journal: Journal,
    settings: Settings,
    keys: Mapping[str, str],
    console: Console,
    *,
    mode: str = "run",
    job_ids: Sequence[str] = (),
) -> int:
    """Run a session and print its summary; returns the exit code.

    ``keys`` maps each provider the session uses to its key (:func:`keys_for`). ``mode``
    "run" runs every runnable job of a new session; "resume" settles what a crash left and
    runs every unfinished job; "retry" settles the same, then runs ``job_ids`` (or every
    failed job) again. Raises JournalError when the journal cannot be written.
    """
    names = session_providers(journal.state)
    async with AsyncExitStack() as stack:
        opened: dict[str, tuple[ImageProvider, ProviderInfo]] = {}
        for name in names:
            info = providers.get(name)
            adapter = await stack.enter_async_context(
                info.open(keys[name], settings.offline, settings.offline_latency)
            )
            opened[name] = (adapter, info)
        provider, info = opened[names[0]]
        result = await run_jobs(
            journal, settings, provider, info, console, mode, job_ids, others=opened
        )
    console.print()
    console.print(render(view_of(journal.state)))
    try:
        page = await anyio.to_thread.run_sync(
            write_report, journal.sessions_dir, journal.session_id
        )
        console.print(f"Contact sheet: {page}")
    except (OSError, InputError) as exc:  # the images and the journal are safe
        console.print(
            f"Contact sheet not written ({exc}); try imagegen --report {journal.session_id}"
        )
    console.print(closing_line(journal, result))
    return result.exit_code


def _after_save(name: str) -> sources.AfterSave | None:
    return sources.get(name).after_save


async def run_jobs(
    journal: Journal,
    settings: Settings,
    provider: ImageProvider,
    info: ProviderInfo,
    console: Console,
    mode: str = "run",
    job_ids: Sequence[str] = (),
    *,
    others: Mapping[str, tuple[ImageProvider, ProviderInfo]] | None = None,
) -> RunResult:
    """Run the writer and the pool, and record who ran the session and how it ended.

    Ctrl-C once: nothing new starts, calls in flight finish. Twice: calls in flight are
    cancelled and their jobs return to pending.
    """
    with unwrap_group():
        return await _run_jobs(
            journal, settings, provider, info, console, mode, job_ids, others or {}
        )


async def _run_jobs(
    journal: Journal,
    settings: Settings,
    provider: ImageProvider,
    info: ProviderInfo,
    console: Console,
    mode: str,
    job_ids: Sequence[str],
    others: Mapping[str, tuple[ImageProvider, ProviderInfo]],
) -> RunResult:
    outputs = Outputs(
        journal.session_id,
        journal.sessions_dir / f"{journal.session_id}-kept",
        fsync=settings.fsync,
    )
    async with journal.writing():
        await journal.update_session(
            SessionUpdate(state="running", stop_reason=None, owner=current_owner())
        )
        todo = await recover_interrupted(journal, outputs, providers.get, _after_save)
        if mode == "retry":
            todo = await prepare_retry(journal, job_ids)
        gate = StartGate(settings.limits)
        notify = None if settings.live else plain_printer(console.file)
        budget = _budget(journal, settings.max_cost)
        uploads = _uploads(journal, provider, settings)
        online = {
            name: (_online(adapter, uploads), adapter_info)
            for name, (adapter, adapter_info) in {info.name: (provider, info), **others}.items()
        }
        by_uri = all(isinstance(adapter, UploadingProvider) for adapter, _ in online.values())
        runner = Runner(
            journal,
            online[info.name][0],
            info,
            gate,
            policy=settings.policy,
            timeout=settings.timeout,
            notify=notify,
            budget=budget,
            sleep=settings.sleep or anyio.sleep,
            references=HeaderReferences() if by_uri else None,  # photos are not read per call
            outputs=outputs,
            after_save=_after_save,
            others=online,
        )
        batch = _batch_runner(journal, provider, info, settings, outputs, uploads, budget, runner)
        display = (
            live_display(lambda: view_of(journal.state, runner, gate.now()), console)
            if settings.live
            else nullcontext()
        )
        with display, unwrap_group():
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_interrupts, runner, tg.cancel_scope, batch)
                try:
                    if batch is None:
                        result = await runner.run(todo)
                    else:
                        sent = await batch.run(todo)
                        back = (
                            [] if batch.halted or not batch.settings.fallback else sent.handed_back
                        )
                        result = await runner.run(list(back))
                finally:
                    tg.cancel_scope.cancel()
        if runner.interrupted or batch is not None:
            result = runner.result()
        if batch is not None and batch.stop_reason and not result.stop_reason:
            result = replace(result, stop_reason=batch.stop_reason)
        stop = result.stop_reason
        await journal.update_session(
            SessionUpdate(state="stopped" if stop else "finished", stop_reason=stop, owner=None)
        )
    return result


def _uploads(
    journal: Journal, provider: ImageProvider, settings: Settings
) -> ReferenceUploads | None:
    """The session's uploaded references, when its provider has a file store and the run
    does not ask for inline references."""
    if not settings.upload_references or not isinstance(provider, FileStore):
        return None
    uses: Counter[str] = Counter()
    for state in journal.state.jobs.values():
        if state.status in RUNNABLE or state.status == "failed":  # what a run may send
            uses.update(state.job.references)
    return ReferenceUploads(journal, provider, clock=settings.clock, uses=uses)


def _online(adapter: ImageProvider, uploads: ReferenceUploads | None) -> ImageProvider:
    """The adapter the online pool calls: sending references by URI through its own file
    store when the session uploads them, else inline."""
    store: object = uploads.store if uploads is not None else None
    if uploads is not None and adapter is store:
        return UploadingProvider(adapter, uploads)
    return adapter


def _batch_runner(
    journal: Journal,
    provider: ImageProvider,
    info: ProviderInfo,
    settings: Settings,
    outputs: Outputs,
    uploads: ReferenceUploads | None,
    budget: Budget | None,
    runner: Runner,
) -> BatchRunner | None:
    """The Batch API executor of a ``--batch`` session whose provider has one."""
    if settings.batch is None or not info.has_batch or not isinstance(provider, BatchService):
        return None
    return BatchRunner(
        journal,
        provider,
        info,
        outputs,
        settings.batch,
        work_dir=journal.sessions_dir / f"{journal.session_id}-batch",
        after_save=_after_save,
        finished=runner.recorder.finished,
        uploads=uploads if settings.batch.upload_references else None,
        policy=settings.policy,
        budget=budget,
        clock=settings.clock,
        sleep=settings.sleep or anyio.sleep,
        notify=runner.notify,
    )


def _budget(journal: Journal, limit: float | None) -> Budget | None:
    """The run's budget, knowing the dearest thinking any earlier call of the session used."""
    if limit is None:
        return None
    budget = Budget(limit)
    for state in journal.state.jobs.values():
        job = state.job
        info = providers.get(job.provider)
        price = info.estimate(job.model, job.quality, job.aspect, len(job.references))
        for attempt in state.history:
            if attempt.outcome == "completed" and attempt.cost_usd is not None:
                budget.settled_calls += 1
                budget.thinking_seen = max(budget.thinking_seen, attempt.cost_usd - price)
    return budget


class _Stoppable(Protocol):
    interrupted: bool

    def stop(self, reason: str) -> None: ...


async def _watch_interrupts(
    runner: Runner, scope: anyio.CancelScope, batch: _Stoppable | None = None
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if runner.interrupted:
                scope.cancel()  # second Ctrl-C: cancel the calls in flight
                return
            for executor in (runner, batch):
                if executor is not None:
                    executor.interrupted = True
                    executor.stop("interrupted (Ctrl-C)")


def closing_line(journal: Journal, result: RunResult) -> str:
    """The last line of a run: what happened, counted from the journal, and what to do next."""
    sid = journal.session_id
    counts = journal.state.summary()
    left = counts.unfinished
    pending = f"{left} job(s) still to run; " if left else ""
    if waiting := counts.counts.get("submitted", 0):
        # A batch session left waiting: the service goes on; a later --resume collects.
        pending = (
            f"{left} job(s) still to run, {waiting} of them in batches the service keeps "
            f"running (follow them with image-gen.sh --status {sid} --watch); "
        )
    if result.stop_reason and result.stop_reason.startswith("budget"):
        return (
            f"Stopped at the budget: ${result.spent_usd or 0:.2f} spent, the next job would "
            f"pass {result.stop_reason.removeprefix('budget reached ')}. {pending}"
            f"continue with: image-gen.sh --resume {sid} --max-cost USD"
        )
    if result.stop_reason and result.stop_reason.startswith("interrupted"):
        return f"Interrupted. {pending}Continue with: image-gen.sh --resume {sid}"
    if result.stop_reason:
        return (
            f"Batch stopped: {result.stop_reason}. {pending}"
            f"Continue with: image-gen.sh --resume {sid}"
        )
    done = counts.counts.get("completed", 0)
    skipped = counts.counts.get("skipped", 0)
    failed = counts.counts.get("failed", 0)
    tally = f"{done} completed" + (f", {skipped} skipped" if skipped else "")
    if failed:
        return (
            f"{failed} job(s) failed ({tally}): see jq '.jobs[] | select(.status==\"failed\")' "
            f"{journal.snapshot_path}; retry them with image-gen.sh --retry {sid}"
        )
    if left:
        return f"{tally}; {pending}continue with: image-gen.sh --resume {sid}"
    if skipped and not done:
        return (
            f"Nothing to make: all {skipped} jobs were already done (skipped, no cost). "
            f"Journal: {journal.snapshot_path}"
        )
    if skipped:
        return f"Every job done: {tally}. Journal: {journal.snapshot_path}"
    return f"All {done} jobs completed. Journal: {journal.snapshot_path}"
