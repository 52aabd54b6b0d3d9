"""Running an open session: provider, journal writer, recovery, pool, display, and the summary.

The shell around the executors: it opens the provider named by the session (or the project's
emulator offline), records who runs the session, settles what a crash left, runs the jobs
under Ctrl-C handling (with ``--batch``: the jobs a batch does not take online, then the Batch
API, then the online pool for what the batches hand back), and prints the summary and
the contact sheet's path. Online requests send their reference images by URI once uploaded
when the provider has a file store, unless ``--inline-references``. The command line
(:mod:`imagegen.cli`) calls :func:`run_session` with a :class:`~imagegen.journal.Journal` it
has created or opened (and whose lock it holds).
"""

from __future__ import annotations

import functools
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
from .executors.budget import Budget, GroupCaps, group_caps
from .executors.limiter import Limits, Sleep, StartGate
from .executors.pool import Runner, RunResult, unrecorded
from .executors.recording import session_view
from .executors.uploads import HeaderReferences, ReferenceUploads, UploadingProvider
from .journal import Journal, current_owner
from .model import RUNNABLE, JobState, SessionState, SessionUpdate
from .outputs import Outputs
from .progress import live_display, plain_printer, render, view_of
from .providers import ProviderInfo
from .providers.base import ImageProvider
from .providers.batch import BatchService, FileStore
from .recovery import prepare_retry, recover_interrupted
from .report import prepare_thumbnails, write_report
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
    signals: bool = True  # Ctrl-C / SIGTERM handling; off when a caller's program owns them


def api_key(info: ProviderInfo, offline: bool) -> str:
    """The provider's key from its environment variables (in its SDK's order), or what its own
    ``read_credential`` finds; InputError naming them when none is set. Offline runs need
    none, nor a provider that reads no key at all (one that draws locally): "" then."""
    if not info.key_vars and info.read_credential is None:
        return ""
    if offline:
        return OFFLINE_KEY
    if info.read_credential is not None:
        return info.read_credential()
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
    for note in result.notes:
        console.print(note)
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
        seen = _thinking_seen(journal)
        budget = _budget(journal, settings.max_cost, seen, new=mode == "run")
        caps = group_caps(
            journal.state.config,
            ((js.job.cost_group, js.cost_usd) for js in journal.state.jobs.values()),
            seen[1],
        )
        uploads = _uploads(journal, provider, info, settings)
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
            notify=None if settings.live else plain_printer(console.file),
            budget=budget,
            sleep=settings.sleep or anyio.sleep,
            references=HeaderReferences() if by_uri else None,  # photos are not read per call
            outputs=outputs,
            after_save=_after_save,
            others=online,
            # Each image's thumbnails as it is saved: the report at the end only finds them.
            saved=functools.partial(prepare_thumbnails, journal.sessions_dir, journal.session_id),
            caps=caps,
        )
        batch = _batch_runner(journal, provider, info, settings, uploads, budget, caps, runner)
        display = (
            live_display(lambda: view_of(journal.state, runner, gate.now()), console)
            if settings.live
            else nullcontext()
        )
        with display, unwrap_group():
            async with anyio.create_task_group() as tg:
                if settings.signals:
                    tg.start_soon(_watch_interrupts, runner, tg.cancel_scope, batch)
                try:
                    if batch is None:
                        result = await runner.run(todo)
                    else:
                        result = await _run_batched(runner, batch, todo)
                finally:
                    tg.cancel_scope.cancel()
        if runner.interrupted:
            result = runner.result()
        if batch is not None and batch.stop_reason and not result.stop_reason:
            result = replace(result, stop_reason=batch.stop_reason)
        stop = result.stop_reason
        await journal.update_session(
            SessionUpdate(state="stopped" if stop else "finished", stop_reason=stop, owner=None)
        )
        notes = await _after_run(journal, stop)
    return replace(result, notes=notes)


async def _run_batched(runner: Runner, batch: BatchRunner, todo: list[str]) -> RunResult:
    """A ``--batch`` run: the jobs a batch does not take go online first (a local draw, an
    image waiting in the spool, another provider's job, one with variants: none waits for a
    batch), then the batch's (sent, followed, collected), then, unless ``--no-fallback``, what
    it handed back. One executor at a time: their holds on the budget and the cost groups'
    caps never wait on each other's calls."""
    states = [runner.journal.job(job_id) for job_id in todo]
    first = [js.id for js in states if not batch.takes(js.kept, js.job)]
    result = await runner.run(first) if first else runner.result()
    if result.stop_reason:
        return result
    sent = await batch.run([js.id for js in states if batch.takes(js.kept, js.job)])
    back = [] if batch.halted or not batch.settings.fallback else list(sent.handed_back)
    return await runner.run(back) if back else runner.result()


def _uploads(
    journal: Journal, provider: ImageProvider, info: ProviderInfo, settings: Settings
) -> ReferenceUploads | None:
    """The session's uploaded references, when its provider has a Files API (not Vertex AI:
    ``ProviderInfo.file_store``) and the run does not ask for inline references."""
    if not settings.upload_references or not info.file_store:
        return None
    if not isinstance(provider, FileStore):
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
    uploads: ReferenceUploads | None,
    budget: Budget | None,
    caps: GroupCaps,
    runner: Runner,
) -> BatchRunner | None:
    """The Batch API executor of a ``--batch`` session whose provider has one, recording
    through the online pool's recorder."""
    if settings.batch is None or not info.has_batch or not isinstance(provider, BatchService):
        return None
    return BatchRunner(
        journal,
        provider,
        info,
        runner.recorder,
        settings.batch,
        work_dir=journal.sessions_dir / f"{journal.session_id}-batch",
        finished=runner.tell,  # the display's recent lines, not the pool's pace
        uploads=uploads,
        policy=settings.policy,
        budget=budget,
        caps=caps,
        clock=settings.clock,
        sleep=settings.sleep or anyio.sleep,
        notify=runner.notify,
    )


async def _after_run(journal: Journal, stop_reason: str | None) -> tuple[str, ...]:
    """Each source's end-of-run step (:data:`imagegen.sources.AfterRun`) and the lines it
    gives the summary; a step that fails is a line too, never fatal: the images and the
    journal are safe."""
    notes: list[str] = []
    names = dict.fromkeys(js.job.source for js in journal.state.jobs.values())
    for name in names:
        try:
            step = sources.get(name).after_run
        except InputError:  # a journal of a source this version does not have
            continue
        if step is None:
            continue
        view = session_view(journal, stop_reason)
        try:
            notes += await anyio.to_thread.run_sync(step, view)
        except Exception as exc:
            notes.append(f"{name}: not written: {type(exc).__name__}: {exc}")
    return tuple(notes)


def _thinking_seen(journal: Journal) -> tuple[int, float]:
    """Calls of the session that reported their cost, and the dearest thinking (USD) of one."""
    calls, seen = 0, 0.0
    for state in journal.state.jobs.values():
        job = state.job
        info = providers.get(job.provider)
        if info.local:
            continue
        price = info.estimate(job.model, job.quality, job.aspect, len(job.references))
        for attempt in state.history:
            if attempt.outcome == "completed" and attempt.cost_usd is not None:
                calls += 1
                seen = max(seen, attempt.cost_usd - price)
    return calls, seen


def _budget(
    journal: Journal, limit: float | None, seen: tuple[int, float], *, new: bool
) -> Budget | None:
    """The run's budget, knowing the dearest thinking any earlier call of the session used.
    A new session's first run starts with what planning spent (``planning_cost_usd``)."""
    if limit is None:
        return None
    planning = float(journal.state.config.get("planning_cost_usd") or 0.0) if new else 0.0
    return Budget(limit, spent=planning, settled_calls=seen[0], thinking_seen=seen[1])


class _Stoppable(Protocol):
    def stop(self, reason: str) -> None: ...


async def _watch_interrupts(
    runner: Runner, scope: anyio.CancelScope, batch: _Stoppable | None = None
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if runner.interrupted:
                scope.cancel()  # second Ctrl-C: cancel the calls in flight
                return
            runner.interrupted = True
            for executor in (runner, batch):
                if executor is not None:
                    executor.stop("interrupted (Ctrl-C)")


def closing_line(journal: Journal, result: RunResult) -> str:
    """The last line of a run: what happened, counted from the journal, and what to do next."""
    sid = journal.session_id
    counts = journal.state.summary()
    capped = sum(
        1
        for js in journal.state.jobs.values()
        if js.status == "pending" and js.error_kind == "cost_cap"
    )
    left = counts.unfinished - capped
    pending = f"{left} job(s) still to run; " if left else ""
    if waiting := counts.counts.get("submitted", 0):
        # A batch session left waiting: the service goes on; a later --resume collects.
        pending = (
            f"{left} job(s) still to run, {waiting} of them in batches the service keeps "
            f"running (follow them with image-gen.sh --status {sid} --watch); "
        )
    if capped:
        pending += f"{capped} job(s) not started: their cost group reached its cap; "
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
    unsaved = unrecorded(journal.state.jobs.values())
    if unsaved and not failed and not left:
        return (
            f"{tally}; {unsaved} image(s) saved but not recorded by the job source "
            f"(the images are kept): see image-gen.sh --status {sid}"
        )
    if failed:
        return (
            f"{failed} job(s) failed ({tally}): see jq '.jobs[] | select(.status==\"failed\")' "
            f"{journal.snapshot_path}; retry them with image-gen.sh --retry {sid}"
        )
    if left:
        return f"{tally}; {pending}continue with: image-gen.sh --resume {sid}"
    if capped:
        return f"{tally}; {pending.removesuffix('; ')}. Journal: {journal.snapshot_path}"
    if skipped and not done:
        return (
            f"Nothing to make: all {skipped} jobs were already done (skipped, no cost). "
            f"Journal: {journal.snapshot_path}"
        )
    if skipped:
        return f"Every job done: {tally}. Journal: {journal.snapshot_path}"
    what = f"All {done} jobs" if done != 1 else "The job"
    return f"{what} completed. Journal: {journal.snapshot_path}"
