"""The progress display of seed 003 ("Progress Display"), live on a terminal, plain otherwise.

:func:`view_of` folds a session document (and, while running, the pool's view) into a
:class:`ProgressView`; :func:`render` formats it as the seed's text block. Both are pure. The
shell is :class:`LiveDisplay` (rich) and :func:`plain_printer` (one line per event).
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from . import pricing

BAR_WIDTH = 20


@dataclass
class PoolView:
    """What the progress display shows beyond the journal's counts (mutated by the runner)."""

    in_flight: dict[str, int] = field(default_factory=dict)  # job id -> attempt number
    recent: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=5))
    pause_until: float = 0.0
    pause_reason: str | None = None
    stop_reason: str | None = None
    interrupted: bool = False


@dataclass(frozen=True, slots=True)
class ProgressView:
    """Everything the display shows, already counted."""

    session_id: str
    header: str
    catalogs: str
    total: int
    counts: Mapping[str, int]
    cost_usd: float
    remaining_usd: float
    current: tuple[str, ...]
    recent: tuple[str, ...]
    notice: str | None


def _label(job: Mapping[str, Any]) -> str:
    return f"[{job['id']}] {job['prompt_id']} + {job['combo']}"


def _cfg(config: Mapping[str, Any], key: str) -> str:
    value = config.get(key)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "all"
    return str(value) if value else "all"


def view_of(
    doc: Mapping[str, Any],
    counts: Mapping[str, int],
    pool: PoolView | None = None,
    now: float | None = None,
) -> ProgressView:
    """The display of a session: from the pool while it runs, from the journal otherwise."""
    jobs = doc["jobs"]
    index = {job["id"]: job for job in jobs}
    if pool is not None:
        current = tuple(
            f"→ {_label(index[j])} (attempt {n})" for j, n in list(pool.in_flight.items())
        )
        recent = tuple(line for _, line in list(pool.recent))
        notice = pool.stop_reason and f"Stopping: {pool.stop_reason}; calls in flight finish"
        if notice and pool.interrupted:
            notice += " (Ctrl-C again cancels them)"
        if not notice and now is not None and pool.pause_until > now:
            notice = f"Paused {pool.pause_until - now:.0f}s: {pool.pause_reason}"
    else:
        current = tuple(
            f"→ {_label(j)} (attempt {j['attempts']})" for j in jobs if j["status"] == "running"
        )
        done = sorted(
            (j for j in jobs if j["status"] in ("completed", "failed") and j["completed"]),
            key=lambda j: (j["completed"], j["id"]),
            reverse=True,
        )[:5]
        recent = tuple(
            f"✓ {_label(j)} → saved"
            if j["status"] == "completed"
            else f"✗ {_label(j)} → {j['error']}"
            for j in done
        )
        notice = doc.get("stop_reason") and f"Stopped: {doc['stop_reason']}"
    config = doc["config"]
    header = (
        f"Wardrobe: {_cfg(config, 'wardrobe')} | UI: {_cfg(config, 'ui_style')} | "
        f"Quality: {config.get('quality', '?')}"
    )
    cost = sum(j["cost_usd"] or 0.0 for j in jobs)
    remaining = sum(
        pricing.estimate(j["model"], j["quality"], len(j["references"]))
        for j in jobs
        if j["status"] not in ("completed", "failed")
    )
    return ProgressView(
        doc["session_id"],
        header,
        _cfg(config, "catalogs"),
        len(jobs),
        dict(counts),
        cost,
        remaining,
        current,
        recent,
        notice or None,
    )


def render(view: ProgressView) -> str:
    """The seed's progress block, e.g. ``Progress: [████░░…] 60% (27/45)``."""
    done = view.counts.get("completed", 0) + view.counts.get("failed", 0)
    fraction = done / view.total if view.total else 1.0
    filled = round(fraction * BAR_WIDTH)
    running = view.counts.get("running", 0)
    pending = view.counts.get("pending", 0) + view.counts.get("retry", 0)
    lines = [
        f"[Session: {view.session_id}]",
        view.header,
        f"Catalogs: {view.catalogs}",
        "",
        f"Progress: [{'█' * filled}{'░' * (BAR_WIDTH - filled)}] {fraction:.0%} "
        f"({done}/{view.total})",
        f"Running:  {running} | Completed: {view.counts.get('completed', 0)} | "
        f"Failed: {view.counts.get('failed', 0)} | Pending: {pending}",
        f"Cost:     ${view.cost_usd:.2f} so far"
        + (f", about ${view.remaining_usd:.2f} to go" if view.remaining_usd else ""),
    ]
    if view.notice:
        lines += ["", view.notice]
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
