"""The runner: a worker pool that takes a session's jobs through the provider to image files.

One task group owns the workers; job ids flow to them through a bounded memory stream. A job
waits for a call slot (``Limits.concurrency``) and a start turn (spacing, per-minute cap,
pool-wide pause), then calls the provider under the retry policy. Every status change is in the
journal before the step that depends on it: ``running`` (with the planned output path) before
the call, ``completed`` only after the image file is on disk.
"""

from __future__ import annotations

import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
from PIL import Image

from . import pricing
from .budget import Budget, reservation
from .errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_STOPPED,
    AttemptTimeout,
    BatchStop,
    ProviderError,
    RateLimited,
    ServerError,
)
from .files import write_atomic
from .images import ImageInfo, probe
from .journal import Journal, now_iso
from .limiter import Clock, Sleep, StartGate
from .progress import PoolView
from .providers.base import Generation, ImageProvider, ImageRequest
from .references import ReferenceCache
from .retry import RetryPolicy, retrying
from .sizes import pixel_size

# Models whose pixel sizes are published per tier; others (2.5 Flash) have one fixed size.
SIZED_MODELS = ("gemini-3-pro-image", "gemini-3-pro-image-preview")


@dataclass(frozen=True, slots=True)
class RunResult:
    """Counts after a run, and why it stopped early (None if it did not)."""

    completed: int
    failed: int
    pending: int
    stop_reason: str | None
    spent_usd: float | None = None  # this run's spending, when it ran under a budget

    @property
    def exit_code(self) -> int:
        """3 stopped, 1 some job failed, 0 every job completed (README, "Exit codes")."""
        if self.stop_reason:
            return EXIT_STOPPED
        return EXIT_FAILED if self.failed or self.pending else EXIT_OK


class _Stopped(Exception):
    """The batch stopped before this job's next attempt could start."""


def planned_output(entry: dict[str, Any], when: datetime) -> Path:
    """``{output_dir}/{timestamp}-{short_id}-{quality}.png``, suffixed ``-2``, ... if taken."""
    folder = Path(entry["output_dir"])
    stem = f"{when:%Y-%m-%d-%H-%M-%S}-{entry['short_id']}-{entry['quality']}"
    path, n = folder / f"{stem}.png", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}.png"
    return path


def to_png(data: bytes, info: ImageInfo) -> bytes:
    """The image as PNG: bytes unchanged if already PNG, else decoded and re-encoded losslessly.

    Outputs are always ``.png`` (seed 003 layout), whatever format the model sent.
    """
    if info.format == "PNG":
        return data
    with Image.open(io.BytesIO(data)) as img:
        out = io.BytesIO()
        img.save(out, format="PNG")
        return out.getvalue()


def check_size(entry: dict[str, Any], info: ImageInfo) -> str | None:
    """A note if the image is not the pixel size the tier promises (None when it is)."""
    if entry["model"] not in SIZED_MODELS:
        return None
    want = pixel_size(entry["quality"], entry["aspect"])
    if (info.width, info.height) == want:
        return None
    return (
        f"wrong size: got {info.width}x{info.height}, {entry['quality']} {entry['aspect']} "
        f"is {want[0]}x{want[1]}"
    )


def job_cost(entry: dict[str, Any], generation: Generation) -> float:
    """USD billed for one successful call of this job (published prices, token usage)."""
    return pricing.cost(
        entry["model"], entry["quality"], len(entry["references"]), generation.usage
    )


def _save(path: Path, data: bytes) -> ImageInfo:
    info = probe(data)  # the provider has checked it whole already
    write_atomic(path, to_png(data, info), exclusive=True)
    return info


class Runner:
    """Runs jobs of one open session. Clock and sleep are injected for tests."""

    def __init__(
        self,
        journal: Journal,
        provider: ImageProvider,
        gate: StartGate,
        *,
        policy: RetryPolicy | None = None,
        timeout: float = 90.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        notify: Callable[[str], None] | None = None,
        budget: Budget | None = None,
        references: ReferenceCache | None = None,
    ) -> None:
        self.journal = journal
        self.provider = provider
        self.gate = gate
        self.policy = policy or RetryPolicy()
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.notify = notify or (lambda _line: None)
        self.view = PoolView()
        self.budget = budget
        self.references = references or ReferenceCache()
        self._server_failures = 0  # in a row, across all jobs: the circuit breaker's count

    def stop(self, reason: str) -> None:
        """Start nothing new; calls in flight finish and are recorded."""
        if self.view.stop_reason is None:
            self.view.stop_reason = reason
            self.notify(f"stopping: {reason}")

    async def run(self, job_ids: list[str]) -> RunResult:
        """Run ``job_ids`` (in order) to completion, failure, or a batch stop."""
        workers = self.gate.limits.concurrency * 2
        send, receive = anyio.create_memory_object_stream[str](0)
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(self._worker, receive.clone())
            receive.close()
            async with send:
                for job_id in job_ids:
                    if self.view.stop_reason:
                        break
                    await send.send(job_id)
        return self.result()

    def result(self) -> RunResult:
        """The session's counts now, and why the run stopped early."""
        counts = self.journal.counts()
        return RunResult(
            counts["completed"],
            counts["failed"],
            counts["pending"] + counts["retry"] + counts["running"],
            self.view.stop_reason,
            None if self.budget is None else round(self.budget.spent, 6),
        )

    async def _worker(self, receive: anyio.abc.ObjectReceiveStream[str]) -> None:
        async with receive:
            async for job_id in receive:
                if not self.view.stop_reason:
                    await self.run_job(job_id)

    async def run_job(self, job_id: str) -> None:
        """Take one job from its current status to completed, failed, or back to pending.

        If the run is cancelled (a second Ctrl-C), the job returns to pending.
        """
        try:
            await self._run_job(job_id)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                self.view.in_flight.pop(job_id, None)
                await self.journal.record(
                    job_id, status="pending", output=None, error="cancelled by Ctrl-C"
                )
            raise

    async def _run_job(self, job_id: str) -> None:
        entry = self.journal.job(job_id)
        label = f"[{job_id}] {entry['prompt_id']} + {entry['combo']}"
        try:
            references = self.references.cached(entry["references"])
            if references is None:
                references = await anyio.to_thread.run_sync(
                    self.references.load, entry["references"]
                )
        except (OSError, ValueError) as exc:
            await self.journal.record(
                job_id,
                status="failed",
                error=f"reference image unreadable: {exc}",
                completed=now_iso(),
            )
            self._finished(job_id, f"✗ {label} → reference image unreadable")
            return
        request = ImageRequest(
            entry["model"],
            entry["prompt"],
            references,
            entry["quality"],
            entry["aspect"],
            self.timeout,
        )

        async def on_retry(error: ProviderError, wait: float) -> None:
            self.view.in_flight.pop(job_id, None)
            await self.journal.record(
                job_id,
                status="retry",
                output=None,
                error=f"{error.kind}: {error}",
                history=_history(entry, error, wait),
            )
            self.notify(f"↻ {label} attempt {entry['attempts']} {error.kind}, retry in {wait:.0f}s")

        started = self.clock()
        try:
            try:
                answer = await self._attempt(job_id, entry, request)
            except ProviderError as first:
                if not first.retryable:
                    raise
                answer = await self._retries(job_id, entry, request, first, started, on_retry)
        except _Stopped:
            await self.journal.record(job_id, status="pending", output=None)
            return
        except BatchStop as exc:
            self.stop(str(exc))
            self.view.in_flight.pop(job_id, None)
            await self.journal.record(
                job_id,
                status="pending",
                output=None,
                error=f"{exc.kind}: {exc}",
                history=_history(entry, exc, None),
            )
            return
        except ProviderError as exc:
            self.view.in_flight.pop(job_id, None)
            reason = getattr(exc, "reason", None)
            await self.journal.record(
                job_id,
                status="failed",
                output=None,
                error=f"{exc.kind}: {exc}",
                completed=now_iso(),
                finish_reason=reason,
                history=_history(entry, exc, None),
            )
            self._finished(job_id, f"✗ {label} → {exc.kind}: {reason or exc}")
            return
        with anyio.CancelScope(shield=True):  # a paid image is saved and recorded whole
            await self._complete(job_id, entry, answer, label)

    async def _retries(
        self,
        job_id: str,
        entry: dict[str, Any],
        request: ImageRequest,
        first: ProviderError,
        started: float,
        on_retry: Callable[[ProviderError, float], Awaitable[None]],
    ) -> tuple[Generation, Path, float]:
        """The attempts after a retryable first failure, under the retry policy.

        tenacity is only built here: most jobs succeed at once, and its per-attempt
        bookkeeping costs more CPU than the rest of the runner's work on a job. ``first`` is
        replayed as attempt 1, so the waits, counts and journal entries are as if tenacity
        had run from the start (``started`` is when attempt 1 began, on ``self.clock``).
        """
        replay: ProviderError | None = first
        controller = retrying(
            self.policy, sleep=self.sleep, clock=self.clock, before_sleep=on_retry, started=started
        )
        async for attempt in controller:
            with attempt:
                if replay is not None:
                    error, replay = replay, None
                    raise error
                answer = await self._attempt(job_id, entry, request)
        return answer

    async def _attempt(
        self, job_id: str, entry: dict[str, Any], request: ImageRequest
    ) -> tuple[Generation, Path, float]:
        async with self.gate.slots:
            if self.view.stop_reason:
                raise _Stopped
            await self.gate.wait_turn()
            if self.view.stop_reason:
                raise _Stopped
            held = 0.0
            if self.budget is not None:
                held = reservation(entry["model"], entry["quality"], len(entry["references"]))
                if not self.budget.reserve(held):
                    self.stop(f"budget reached (--max-cost ${self.budget.limit:.2f})")
                    raise _Stopped
            attempt = entry["attempts"] + 1
            output = await anyio.to_thread.run_sync(planned_output, entry, datetime.now())
            await self.journal.record(
                job_id,
                status="running",
                attempts=attempt,
                started=now_iso(),
                output=str(output),
            )
            self.view.in_flight[job_id] = attempt
            cost = 0.0
            try:
                generation = await self.provider.generate(request)
            except BatchStop as exc:
                self.stop(str(exc))  # before the slot is released: nothing new may start
                raise
            except RateLimited as exc:
                wait = (
                    exc.retry_after if exc.retry_after is not None else self.policy.rate_limit_wait
                )
                await self._pause(wait, "rate limited (429)")
                raise
            except (ServerError, AttemptTimeout):
                self._server_failures += 1
                if self._server_failures >= self.policy.breaker_threshold:
                    self._server_failures = 0
                    await self._pause(
                        self.policy.breaker_pause,
                        f"circuit breaker: {self.policy.breaker_threshold} server errors in a row",
                    )
                raise
            else:
                self._server_failures = 0
                cost = job_cost(entry, generation)
                return generation, output, cost
            finally:
                if self.budget is not None:
                    self.budget.settle(held, cost)

    async def _pause(self, seconds: float, reason: str) -> None:
        """Pause every start, and say so in the journal and the display."""
        self.gate.pause(seconds, reason)
        self.view.pause_until, self.view.pause_reason = self.gate.paused_until, reason
        until = datetime.now() + timedelta(seconds=seconds)
        await self.journal.record_session(
            paused_until=until.isoformat(timespec="seconds"), pause_reason=reason
        )
        self.notify(f"⏸ pool paused {seconds:.0f}s: {reason}")

    async def _complete(
        self,
        job_id: str,
        entry: dict[str, Any],
        answer: tuple[Generation, Path, float],
        label: str,
    ) -> None:
        generation, output, cost = answer
        self.view.in_flight.pop(job_id, None)
        total_cost = round((entry["cost_usd"] or 0.0) + cost, 6)  # retries of a job add up
        try:
            info = await anyio.to_thread.run_sync(_save, output, generation.image)
        except OSError as exc:
            await self.journal.record(  # the image was paid for even though it is lost
                job_id,
                status="failed",
                output=None,
                completed=now_iso(),
                cost_usd=total_cost,
                error=f"cannot write {output}: {exc.strerror or exc}",
            )
            self._finished(job_id, f"✗ {label} → cannot write image")
            return
        size_note = check_size(entry, info)
        await self.journal.record(
            job_id,
            status="completed",
            output=str(output),
            completed=now_iso(),
            error=size_note,
            finish_reason=generation.finish_reason,
            usage=generation.usage.as_dict(),
            cost_usd=total_cost,
            image={
                "format": info.format,
                "width": info.width,
                "height": info.height,
                "size_ok": size_note is None,
            },
            history={
                "attempt": entry["attempts"],
                "started": entry["started"],
                "ended": now_iso(),
                "outcome": "completed",
                "output": str(output),
                "cost_usd": round(cost, 6),
            },
        )
        self._finished(job_id, f"✓ {label} → saved {output.name}")

    def _finished(self, job_id: str, line: str) -> None:
        self.view.recent.appendleft((job_id, line))
        self.notify(line)


def _history(entry: dict[str, Any], error: ProviderError, wait: float | None) -> dict[str, Any]:
    """One failed attempt, as kept in the job's ``history``."""
    return {
        "attempt": entry["attempts"],
        "started": entry["started"],
        "ended": now_iso(),
        "outcome": error.kind,
        "error": str(error),
        "wait": None if wait is None else round(wait, 3),
    }
