"""``--status``: the list of sessions, one session's progress display, live or as JSON.

Reads journals only (:func:`imagegen.journal.load`), never writes them, needs no key. A session
is "running" while another process holds its lock.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import filelock
import orjson
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from . import sessionfiles as journal_mod
from .errors import InputError
from .progress import render, view_of


def is_running(sessions_dir: Path, session_id: str) -> bool:
    """True if a process holds the session's lock right now."""
    lock = filelock.FileLock(str(sessions_dir / f"{session_id}.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        return True
    lock.release()
    return False


def state_of(sessions_dir: Path, doc: dict[str, Any]) -> str:
    """running (locked by a process), finished, stopped, or interrupted (died or Ctrl-C)."""
    if is_running(sessions_dir, doc["session_id"]):
        return "running"
    if doc.get("state") in ("finished", "stopped"):
        return str(doc["state"])
    return "interrupted" if doc.get("state") == "running" else "new"


def session_summary(sessions_dir: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """What ``--status --json`` prints for one session."""
    failed = [
        {"id": j["id"], "prompt_id": j["prompt_id"], "combo": j["combo"], "error": j["error"]}
        for j in doc["jobs"]
        if j["status"] == "failed"
    ]
    running = [
        {"id": j["id"], "prompt_id": j["prompt_id"], "combo": j["combo"], "attempt": j["attempts"]}
        for j in doc["jobs"]
        if j["status"] == "running"
    ]
    return {
        "session_id": doc["session_id"],
        "started": doc["started"],
        "updated": doc.get("updated"),
        "state": state_of(sessions_dir, doc),
        "stop_reason": doc.get("stop_reason"),
        "parent": doc.get("parent"),
        "children": doc.get("children", []),
        "config": doc["config"],
        "summary": doc["summary"],
        "running": running,
        "failed": failed,
    }


def list_sessions(sessions_dir: Path, console: Console, *, as_json: bool) -> int:
    """Print every session: id, started, state, counts, config."""
    rows = []
    for session_id in journal_mod.list_sessions(sessions_dir):
        try:
            rows.append(session_summary(sessions_dir, journal_mod.load(sessions_dir, session_id)))
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
        s, c = row["summary"], row["config"]
        table.add_row(
            row["session_id"],
            row["state"],
            f"{s['completed']}/{s['total']}",
            str(s["failed"]),
            str(s["pending"] + s["retry"] + s["running"]),
            f"${s['cost_usd']:.2f}",
            f"{c.get('wardrobe')} {c.get('ui_style') or 'all'} {','.join(c.get('catalogs', []))} "
            f"{c.get('quality')}",
        )
    console.print(table)
    return 0


def render_session(sessions_dir: Path, doc: dict[str, Any]) -> str:
    """The seed's progress block for a session, with its state and the errors of failed jobs."""
    counts = Counter(job["status"] for job in doc["jobs"])
    lines = [render(view_of(doc, counts)), "", f"State: {state_of(sessions_dir, doc)}"]
    failed = [j for j in doc["jobs"] if j["status"] == "failed"]
    if failed:
        lines += ["", "Failed:"]
        lines += [
            f"  ✗ [{j['id']}] {j['prompt_id']} + {j['combo']}: {j['error']}" for j in failed[:20]
        ]
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
    """Print one session; with ``watch``, redraw from the journal until no process runs it."""
    doc = journal_mod.load(sessions_dir, session_id)
    if as_json:
        console.file.write(
            orjson.dumps(session_summary(sessions_dir, doc), option=orjson.OPT_INDENT_2).decode()
            + "\n"
        )
        return 0
    if not watch:
        console.print(render_session(sessions_dir, doc))
        return 0
    with Live(Text(render_session(sessions_dir, doc)), console=console, auto_refresh=False) as live:
        while is_running(sessions_dir, session_id):
            time.sleep(interval)
            doc = journal_mod.load(sessions_dir, session_id)
            live.update(Text(render_session(sessions_dir, doc)), refresh=True)
    return 0
