"""Running an open session: provider (or offline emulator), journal writer, pool and display."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from dataclasses import dataclass

import anyio
from rich.console import Console

from .budget import Budget
from .errors import InputError, unwrap_group
from .journal import Journal, running
from .limiter import Limits, StartGate
from .progress import live_display, plain_printer, render, view_of
from .providers.base import ImageProvider
from .recovery import prepare_retry, recover_interrupted
from .report import write_report
from .retry import RetryPolicy
from .runner import Runner, RunResult

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

    def api_key(self) -> str:
        """The key from GOOGLE_API_KEY or GEMINI_API_KEY (the SDK's order); raises InputError."""
        if self.offline:
            return OFFLINE_KEY
        key = os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
        if not key:
            raise InputError(
                "no API key: set GEMINI_API_KEY (https://aistudio.google.com/apikey), "
                "or pass --offline to use the built-in emulator"
            )
        return key


@asynccontextmanager
async def open_provider(settings: Settings, api_key: str) -> AsyncIterator[ImageProvider]:
    """The Gemini provider, pointed at an in-process emulator when ``settings.offline``."""
    from .emulator import Emulator
    from .providers.gemini.client import GeminiProvider

    if settings.offline:
        with Emulator(latency=settings.offline_latency) as emulator:
            provider = GeminiProvider(api_key, base_url=emulator.base_url)
            try:
                yield provider
            finally:
                await provider.aclose()
    else:
        provider = GeminiProvider(api_key)
        try:
            yield provider
        finally:
            await provider.aclose()


async def run_session(
    journal: Journal,
    job_ids: list[str] | None,
    settings: Settings,
    api_key: str,
    console: Console,
    retry_job: str | None = None,
    mode: str = "run",
) -> int:
    """Run a session and print its summary; returns the exit code.

    ``mode`` "run" runs ``job_ids``; "resume" settles what a crash left and runs every
    unfinished job; "retry" runs ``retry_job`` (or every failed job) again.
    """
    async with open_provider(settings, api_key) as provider:
        result = await run_jobs(journal, job_ids, settings, provider, console, retry_job, mode)
    console.print()
    console.print(render(view_of(journal.doc, journal.counts())))
    try:
        page = await anyio.to_thread.run_sync(
            write_report, journal.sessions_dir, journal.session_id
        )
        console.print(f"Contact sheet: {page}")
    except OSError as exc:  # the images and the journal are safe; only the page is missing
        console.print(
            f"Contact sheet not written ({exc}); try imagegen --report {journal.session_id}"
        )
    console.print(_closing_line(journal, result))
    return result.exit_code


async def run_jobs(
    journal: Journal,
    job_ids: list[str] | None,
    settings: Settings,
    provider: ImageProvider,
    console: Console,
    retry_job: str | None = None,
    mode: str = "run",
) -> RunResult:
    """Hold the session, run the pool, and record how the run ended.

    Ctrl-C once: nothing new starts, calls in flight finish. Twice: calls in flight are
    cancelled and their jobs return to pending.
    """
    async with running(journal):
        if mode == "resume":
            job_ids = await recover_interrupted(journal)
        elif mode == "retry":
            job_ids = await prepare_retry(journal, retry_job)
        await journal.record_session(state="running", stop_reason=None)
        gate = StartGate(settings.limits)
        runner = Runner(
            journal,
            provider,
            gate,
            policy=settings.policy,
            timeout=settings.timeout,
            notify=None if settings.live else plain_printer(console.file),
            budget=None if settings.max_cost is None else Budget(settings.max_cost),
        )
        display = (
            live_display(
                lambda: view_of(journal.doc, journal.counts(), runner.view, gate.now()), console
            )
            if settings.live
            else nullcontext()
        )
        with display:
            with unwrap_group():
                async with anyio.create_task_group() as tg:
                    tg.start_soon(_watch_interrupts, runner, tg.cancel_scope)
                    result = await runner.run(job_ids or [])
                    tg.cancel_scope.cancel()
            if runner.view.interrupted:
                result = runner.result()
        stop = result.stop_reason
        await journal.record_session(state="stopped" if stop else "finished", stop_reason=stop)
    return result


async def _watch_interrupts(runner: Runner, scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if runner.view.interrupted:
                scope.cancel()  # second Ctrl-C: cancel the calls in flight
                return
            runner.view.interrupted = True
            runner.stop("interrupted (Ctrl-C)")


async def link_child(parent: Journal, child_id: str) -> None:
    """Record an upgrade session on its parent; the parent changes in no other way."""
    async with running(parent):
        await parent.record_session(children=[*parent.doc.get("children", []), child_id])


def _closing_line(journal: Journal, result: RunResult) -> str:
    sid = journal.session_id
    if result.stop_reason and result.stop_reason.startswith("budget"):
        return (
            f"Stopped at the budget: ${result.spent_usd or 0:.2f} spent, the next job would "
            f"pass {result.stop_reason.removeprefix('budget reached ')}. "
            f"{result.pending} job(s) pending; "
            f"continue with: image-gen.sh --resume {sid} --max-cost USD"
        )
    if result.stop_reason and result.stop_reason.startswith("interrupted"):
        return f"Interrupted. Continue with: image-gen.sh --resume {sid}"
    if result.stop_reason:
        return (
            f"Batch stopped: {result.stop_reason}. Check the API key, permissions and quota, "
            f"then continue with: image-gen.sh --resume {sid}"
        )
    if result.failed:
        return (
            f"{result.failed} job(s) failed: see jq '.jobs[] | select(.status==\"failed\")' "
            f"{journal.snapshot_path}; retry them with image-gen.sh --retry {sid}"
        )
    return f"All {result.completed} jobs completed. Journal: {journal.snapshot_path}"
