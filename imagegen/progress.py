"""The progress display of seed 003 ("Progress Display"), live on a terminal, plain otherwise.

:func:`view_of` folds a session (and, while it runs, the runner's view of the pool) into a
:class:`ProgressView`; :func:`render` formats it as the seed's text block. Both are pure and know
no source: the header lines are the ones the source recorded in the session config, and a job
is shown by its title. The shell is :func:`live_display` (rich) and :func:`plain_printer`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from . import pricing
from .batchview import batch_lines
from .model import TERMINAL, SessionState

if TYPE_CHECKING:
    from .executors.pool import Runner

BAR_WIDTH = 20


#: Images per minute are measured over this many seconds of recent completions.
PACE_WINDOW = 300.0


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast a session goes: seconds since it (this run) started, images finished per minute
    over the last :data:`PACE_WINDOW` seconds, and the estimated seconds to finish (None until
    there is something to measure)."""

    elapsed: float | None = None
    per_minute: float | None = None
    eta: float | None = None
    bound: str | None = None  # what limits the pace: "spacing", "60/min cap", "3 in flight"


def pace(
    *,
    elapsed: float | None,
    finished_at: Sequence[float],
    now: float,
    remaining: int,
    durations: Sequence[float],
    concurrency: int,
    min_interval: float,
    rpm: int,
    paused_for: float = 0.0,
    starts_last_minute: int = 0,
) -> Pace:
    """The session's pace and a time to finish that accounts for the pool's limits.

    ``finished_at`` are the clock times (seconds) jobs finished, ``durations`` recent call
    durations (seconds). The estimate is the longest of the times the remaining jobs need
    under each limit: ``concurrency`` calls of the mean duration at once, one start per
    ``min_interval``, and ``rpm`` starts in any minute (of which ``starts_last_minute`` are
    used); plus what is left of a pause. Images per minute are measured, not estimated. Pure.
    """
    recent = [t for t in finished_at if now - t <= PACE_WINDOW]
    per_minute = None
    if len(recent) >= 2:
        span = max(now - min(recent), 1.0)
        per_minute = len(recent) / span * 60
    if remaining == 0:
        return Pace(elapsed, per_minute, 0.0, None)
    if not durations:
        return Pace(elapsed, per_minute, None, None)
    mean = sum(durations) / len(durations)
    needs = {
        f"{concurrency} in flight": remaining * mean / concurrency,
        "spacing": remaining * min_interval,
        # The first (rpm - used) starts may go now; every further rpm starts take a minute.
        f"{rpm}/min cap": max(0, remaining - max(0, rpm - starts_last_minute)) * 60 / rpm,
    }
    bound, seconds = max(needs.items(), key=lambda item: item[1])
    return Pace(elapsed, per_minute, seconds + paused_for, bound)


def format_seconds(seconds: float) -> str:
    """ "42 s", "3 min 05 s", "2 h 07 min"."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


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
    pace: Pace = Pace()
    batches: tuple[str, ...] = ()  # a batch session's batches (imagegen.batchview)


def remaining_cost(state: SessionState) -> float:
    """USD the unfinished jobs are expected to cost at published prices: every variant still
    to make, at Batch API prices where a batch session sends the job (:mod:`imagegen.pricing`)."""
    batch = bool(state.config.get("batch"))
    return sum(
        pricing.run_price(js, batch)
        for js in state.jobs.values()
        if js.status not in TERMINAL and not js.kept
    )


def view_of(
    state: SessionState, runner: Runner | None = None, now: float | None = None
) -> ProgressView:
    """The display of a session: from the runner while it runs, from the journal otherwise.

    The pace is the online pool's: a job waiting in a batch (``submitted``) is not among the
    jobs its time to finish counts, nor a batch's result among its images per minute (a fold
    saves hundreds in a second; the service set their pace, and the batches' own lines say
    where each one is)."""
    jobs = state.jobs
    # Calls, not jobs: a job of N variants takes N turns of the pool.
    remaining = sum(
        pricing.calls_left(js) for js in jobs.values() if js.status not in (*TERMINAL, "submitted")
    )
    config = state.config
    limits: dict[str, Any] = {
        "concurrency": int(config.get("concurrency") or 3),
        "min_interval": float(config.get("min_interval") or 0.0),
        "rpm": int(config.get("rpm") or 60),
    }
    if runner is not None:
        view = runner.view
        current = tuple(
            f"→ [{j}] {jobs[j].job.title} (attempt {n})" for j, n in list(view.in_flight.items())
        )
        recent = tuple(view.recent)
        notice = runner.stop_reason and f"Stopping: {runner.stop_reason}; calls in flight finish"
        if notice and runner.interrupted:
            notice += " (Ctrl-C again cancels them)"
        paused_for = 0.0
        if now is not None and view.pause_until > now:
            paused_for = view.pause_until - now
            if not notice:
                notice = f"Paused, {format_seconds(paused_for)} left: {view.pause_reason}"
        clock = now if now is not None else 0.0
        run_pace = pace(
            elapsed=clock - view.started if now is not None else None,
            finished_at=list(view.finished_at),
            now=clock,
            remaining=remaining,
            durations=list(view.durations),
            paused_for=paused_for,
            starts_last_minute=runner.gate.starts_within(60.0),
            **limits,
        )
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
        run_pace = _journal_pace(state, remaining, limits)
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
        run_pace,
        batch_lines(state) if state.batches else (),
    )


def _when(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _journal_pace(state: SessionState, remaining: int, limits: Mapping[str, Any]) -> Pace:
    """The pace as the journal shows it (for ``--status``, from another process). A job sent
    in a batch is no call of the pool: it counts in the time elapsed only, not in the images
    per minute, the per-minute cap or the mean call duration."""
    finished: list[float] = []
    durations: list[float] = []
    starts: list[float] = []
    first: list[float] = []
    last = 0.0
    batched = {job_id for record in state.batches.values() for job_id in record.job_ids}
    for js in state.jobs.values():
        begin = _when(js.started)
        end = _when(js.completed) if js.status in ("completed", "failed") else None
        if begin is not None:
            first.append(begin)
        if end is not None:
            last = max(last, end)
        if js.id in batched:
            continue
        if begin is not None:
            starts.append(begin)
        if end is not None:
            finished.append(end)
            if begin is not None and js.attempts == 1:
                durations.append(max(0.0, end - begin))
    now = datetime.now().timestamp() if state.state == "running" else last
    elapsed = now - min(first) if first else None
    return pace(
        elapsed=elapsed,
        finished_at=finished,
        now=now,
        remaining=remaining,
        durations=durations[-20:],
        starts_last_minute=sum(1 for t in starts if now - t <= 60),
        **limits,
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
    p = view.pace
    if p.elapsed is not None:
        parts = [f"Time:     {format_seconds(p.elapsed)} elapsed"]
        if p.per_minute is not None:
            parts.append(f"{p.per_minute:.1f} images/min")
        if p.eta:
            limit = f" (bound by {p.bound})" if p.bound else ""
            parts.append(f"about {format_seconds(p.eta)} to go{limit}")
        if c.get("submitted"):
            parts.append(f"{c['submitted']} in batches, at the service's pace")
        lines.append(" | ".join(parts))
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
