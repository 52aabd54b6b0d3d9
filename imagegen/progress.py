"""The progress display of seed 003 ("Progress Display"), live on a terminal, plain otherwise.

:func:`view_of` folds a session (and, while it runs, the runner's view of the pool) into a
:class:`ProgressView`; :func:`render` formats it as the seed's text block. Both are pure and know
no source: the header lines are the ones the source recorded in the session config, and a job
is shown by its title. The shell is :func:`live_display` (rich) and :func:`plain_printer`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.text import Text

from . import providers
from .batchview import batch_lines
from .model import TERMINAL, SessionState

if TYPE_CHECKING:
    from .executors.pool import Runner

BAR_WIDTH = 20


@dataclass(frozen=True, slots=True)
class ProgressView:
    """Everything the display shows, already counted."""

    session_id: str
    header: tuple[str, ...]
    total: int
    counts: Mapping[str, int]
    cost_usd: float
    remaining_usd: float
    current: tuple[str, ...]
    recent: tuple[str, ...]
    notice: str | None
    batches: tuple[str, ...] = ()  # a batch session's batches (imagegen.batchview)


def remaining_cost(state: SessionState) -> float:
    """USD the unfinished jobs are expected to cost at published prices (Batch API prices
    for a batch session's jobs)."""
    total = 0.0
    batch = bool(state.config.get("batch"))
    for js in state.jobs.values():
        if js.status in TERMINAL or js.kept:
            continue
        job = js.job
        info = providers.get(job.provider)
        estimate = info.batch_estimate if batch and info.batch_estimate else info.estimate
        total += estimate(job.model, job.quality, job.aspect, len(job.references))
    return total


def view_of(
    state: SessionState, runner: Runner | None = None, now: float | None = None
) -> ProgressView:
    """The display of a session: from the runner while it runs, from the journal otherwise."""
    jobs = state.jobs
    if runner is not None:
        view = runner.view
        current = tuple(
            f"→ [{j}] {jobs[j].job.title} (attempt {n})" for j, n in list(view.in_flight.items())
        )
        recent = tuple(view.recent)
        notice = runner.stop_reason and f"Stopping: {runner.stop_reason}; calls in flight finish"
        if notice and runner.interrupted:
            notice += " (Ctrl-C again cancels them)"
        if not notice and now is not None and view.pause_until > now:
            notice = f"Paused {view.pause_until - now:.0f}s: {view.pause_reason}"
    else:
        current = tuple(
            f"→ [{js.id}] {js.job.title} (attempt {js.attempts})"
            for js in jobs.values()
            if js.status == "running"
        )
        done = sorted(
            (js for js in jobs.values() if js.status in ("completed", "failed") and js.completed),
            key=lambda js: (js.completed or "", js.id),
            reverse=True,
        )[:5]
        recent = tuple(
            f"✓ [{js.id}] {js.job.title} → saved"
            if js.status == "completed"
            else f"✗ [{js.id}] {js.job.title} → {js.error}"
            for js in done
        )
        notice = state.stop_reason and f"Stopped: {state.stop_reason}"
    header = state.config.get("header") or ()
    return ProgressView(
        state.session_id,
        tuple(str(line) for line in header),
        len(jobs),
        dict(state.counts),
        state.summary().cost_usd,
        remaining_cost(state),
        current,
        recent,
        notice or None,
        batch_lines(state) if state.batches else (),
    )


def render(view: ProgressView) -> str:
    """The seed's progress block, e.g. ``Progress: [████░░…] 60% (27/45)``."""
    c = view.counts
    done = c.get("completed", 0) + c.get("failed", 0) + c.get("skipped", 0)
    fraction = done / view.total if view.total else 1.0
    filled = round(fraction * BAR_WIDTH)
    pending = c.get("pending", 0) + c.get("retry", 0)
    skipped = f" | Skipped: {c.get('skipped', 0)}" if c.get("skipped") else ""
    skipped += f" | Submitted: {c.get('submitted', 0)}" if c.get("submitted") else ""
    lines = [
        f"[Session: {view.session_id}]",
        *view.header,
        "",
        f"Progress: [{'█' * filled}{'░' * (BAR_WIDTH - filled)}] {fraction:.0%} "
        f"({done}/{view.total})",
        f"Running:  {c.get('running', 0)} | Completed: {c.get('completed', 0)} | "
        f"Failed: {c.get('failed', 0)} | Pending: {pending}{skipped}",
        f"Cost:     ${view.cost_usd:.2f} so far"
        + (f", about ${view.remaining_usd:.2f} to go" if view.remaining_usd else ""),
    ]
    if view.notice:
        lines += ["", view.notice]
    if view.batches:
        lines += ["", "Batches:", *(f"  {line}" for line in view.batches)]
    if view.current:
        lines += ["", "Current:", *(f"  {line}" for line in view.current)]
    if view.recent:
        lines += ["", "Recent:", *(f"  {line}" for line in view.recent)]
    return "\n".join(lines)


@contextmanager
def live_display(get_view: Callable[[], ProgressView], console: Console) -> Iterator[None]:
    """Redraw the progress block four times a second until the block exits."""
    with Live(
        get_renderable=lambda: Text(render(get_view())),
        console=console,
        refresh_per_second=4,
        transient=False,
    ):
        yield


def plain_printer(stream: IO[str] = sys.stdout) -> Callable[[str], None]:
    """One timestamped line per event, for logs and pipes."""

    closed = False

    def emit(line: str) -> None:
        # A closed pipe (| head) must not stop a paid batch: printing stops, the run goes on.
        nonlocal closed
        if closed:
            return
        try:
            stream.write(f"{time.strftime('%H:%M:%S')} {line}\n")
            stream.flush()
        except (OSError, ValueError):
            closed = True

    return emit
