"""``--status``: the list of sessions, one session's progress, live or as JSON.

Reads journals only (:func:`imagegen.journal.load`): never writes them, never takes a session's
lock, needs no key. Whether a session is running is what its journal says plus whether the
process it names is alive (:func:`imagegen.journal.owner_alive`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import journal as journal_mod
from .batchview import batch_rows
from .errors import InputError
from .model import RUNNABLE, SessionState
from .progress import render, view_of


def run_state(state: SessionState) -> str:
    """ "running" (its process is alive), "finished", "stopped", "interrupted" (its process
    died, or was stopped by Ctrl-C twice), or "new" (never run)."""
    if state.state in ("finished", "stopped"):
        return state.state
    if state.state == "running":
        return "running" if journal_mod.owner_alive(state.owner) else "interrupted"
    return "new"


def _job_row(js: Any, **extra: Any) -> dict[str, Any]:
    return {"id": js.id, "title": js.job.title, **extra}


def session_summary(state: SessionState) -> dict[str, Any]:
    """What ``--status --json`` prints for one session."""
    jobs = state.jobs.values()
    return {
        "session_id": state.session_id,
        "started": state.started,
        "updated": state.updated,
        "state": run_state(state),
        "stop_reason": state.stop_reason,
        "parent": state.parent,
        "children": list(state.children),
        "config": state.config,
        "summary": state.summary().as_dict(),
        "running": [_job_row(js, attempt=js.attempts) for js in jobs if js.status == "running"],
        "failed": [
            _job_row(js, error=js.error, error_kind=js.error_kind)
            for js in jobs
            if js.status == "failed"
        ],
        "kept": [_job_row(js, kept=js.kept) for js in jobs if js.kept],
        "batches": batch_rows(state),
        "unrecorded": [
            _job_row(js, output=js.output, delivery=js.delivery) for js in jobs if js.unrecorded
        ],
    }


def _config_line(config: dict[str, Any]) -> str:
    """What a session makes, in a few words: its source's facts and the size tier."""
    facts = [str(v) for _, v in config.get("facts") or ()]
    return " ".join([*facts, str(config.get("quality", ""))]).replace(", ", ",")


def list_sessions(sessions_dir: Path, console: Console, *, as_json: bool) -> int:
    """Print every session: id, state, counts, cost, what it generates."""
    rows: list[dict[str, Any]] = []
    for session_id in journal_mod.list_sessions(sessions_dir):
        try:
            rows.append(session_summary(journal_mod.load(sessions_dir, session_id)))
        except InputError as exc:
            rows.append({"session_id": session_id, "error": str(exc)})
    if as_json:
        console.file.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not rows:
        console.print(f"No sessions in {sessions_dir}.")
        return 0
    # The session id is the start time; compact columns keep whole ids in 80 columns.
    table = Table(title=f"Sessions in {sessions_dir}", box=box.SIMPLE, pad_edge=False)
    for column in ("session", "state", "done", "failed", "pending", "cost", "config"):
        table.add_column(column, no_wrap=column != "config")
    for row in rows:
        if "error" in row:
            table.add_row(row["session_id"], "unreadable", "", "", "", "", row["error"])
            continue
        s = row["summary"]
        table.add_row(
            row["session_id"],
            row["state"],
            f"{s['completed'] + s['skipped']}/{s['total']}",
            str(s["failed"]),
            str(sum(s[status] for status in RUNNABLE)),
            f"${s['cost_usd']:.2f}",
            _config_line(row["config"]),
        )
    console.print(table)
    return 0


def render_session(state: SessionState) -> str:
    """The seed's progress block for a session, with its state and what needs attention."""
    lines = [render(view_of(state)), "", f"State: {run_state(state)}"]
    if provider := state.config.get("provider"):
        model = state.config.get("model")
        lines.append(f"Provider: {provider}" + (f" · {model}" if model else ""))
    kept = [js for js in state.jobs.values() if js.kept]
    if kept:
        lines += ["", f"Paid images kept in the spool (placed by --resume): {len(kept)}"]
        lines += [f"  ! [{js.id}] {js.job.title}: {js.kept}" for js in kept[:10]]
    unsaved = [js for js in state.jobs.values() if js.unrecorded]
    if unsaved:
        lines += ["", "Saved, but not recorded by the job source (the images are kept):"]
        lines += [f"  ! [{js.id}] {js.job.title}: {js.delivery}" for js in unsaved[:20]]
        if len(unsaved) > 20:
            lines.append(f"  … and {len(unsaved) - 20} more (--json lists them all)")
    failed = [js for js in state.jobs.values() if js.status == "failed"]
    if failed:
        lines += ["", "Failed:"]
        lines += [f"  ✗ [{js.id}] {js.job.title}: {js.error}" for js in failed[:20]]
        if len(failed) > 20:
            lines.append(f"  … and {len(failed) - 20} more (--json lists them all)")
    return "\n".join(lines)


def show_session(
    sessions_dir: Path,
    session_id: str,
    console: Console,
    *,
    as_json: bool,
    watch: bool,
    interval: float = 1.0,
) -> int:
    """Print one session; with ``watch``, follow it from the journal until no process runs
    it: redrawn in place on a terminal, one block per change otherwise."""
    state = journal_mod.load(sessions_dir, session_id)
    if as_json:
        console.file.write(
            orjson.dumps(session_summary(state), option=orjson.OPT_INDENT_2).decode() + "\n"
        )
        return 0
    if not watch:
        console.print(render_session(state))
        return 0
    if not console.is_terminal:
        return _watch_plain(sessions_dir, session_id, console, interval)
    with Live(Text(render_session(state)), console=console, auto_refresh=False) as live:
        while run_state(state) == "running":
            time.sleep(interval)
            state = journal_mod.load(sessions_dir, session_id)
            live.update(Text(render_session(state)), refresh=True)
    return 0


def _watch_plain(sessions_dir: Path, session_id: str, console: Console, interval: float) -> int:
    """``--status --watch`` into a pipe or a log: a block now and whenever something changes."""
    last = ""
    while True:
        state = journal_mod.load(sessions_dir, session_id)
        text = render_session(state)
        if text != last:
            console.file.write(f"{time.strftime('%H:%M:%S')}\n{text}\n\n")
            console.file.flush()
            last = text
        if run_state(state) != "running":
            return 0
        time.sleep(interval)
