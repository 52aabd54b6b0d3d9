"""Picking up a session again: which jobs resume or retry runs, and what a crash left behind.

Rules (issue 3, "Verbs"): a completed job is never called again by ``--resume``; a job left
``running`` by a crash whose planned output is a whole image of the right size is marked
completed without a call, otherwise it returns to pending; ``--retry`` re-runs one job whatever
its status (its old file is kept), or every failed job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from . import pricing
from .errors import InputError
from .images import ImageInfo, sniff_file
from .journal import Journal, now_iso
from .runner import check_size

RUNNABLE = ("pending", "retry", "running")


def _finished_image(entry: dict[str, Any]) -> ImageInfo | None:
    if not entry["output"]:
        return None
    try:
        info = sniff_file(Path(entry["output"]))
    except (OSError, ValueError):
        return None
    return info if check_size(entry, info) is None else None


def _remove_partial_writes(entry: dict[str, Any]) -> None:
    # write_atomic's temporary files (".NAME.PID.tmp") of a process that died mid-write.
    folder = Path(entry["output_dir"])
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)


async def recover_interrupted(journal: Journal) -> list[str]:
    """Settle jobs a crash left ``running``; returns the ids that still need a call, in order."""
    todo: list[str] = []
    for entry in journal.doc["jobs"]:
        if entry["status"] == "running":
            await anyio.to_thread.run_sync(_remove_partial_writes, entry)
            info = await anyio.to_thread.run_sync(_finished_image, entry)
            if info is not None:
                await journal.record(
                    entry["id"],
                    status="completed",
                    completed=now_iso(),
                    error=None,
                    cost_usd=round(
                        pricing.estimate(
                            entry["model"], entry["quality"], len(entry["references"])
                        ),
                        6,
                    ),
                    image={
                        "format": info.format,
                        "width": info.width,
                        "height": info.height,
                        "size_ok": True,
                    },
                    history={
                        "attempt": entry["attempts"],
                        "started": entry["started"],
                        "ended": now_iso(),
                        "outcome": "recovered after a crash",
                    },
                )
                continue
            await journal.record(entry["id"], status="pending", output=None)
        if entry["status"] in RUNNABLE:
            todo.append(entry["id"])
    return todo


async def prepare_retry(journal: Journal, job_id: str | None) -> list[str]:
    """Return the job (or every failed job) to pending for another attempt; returns the ids.

    Raises InputError for an unknown job id or when there is nothing to retry.
    """
    if job_id is not None:
        ids = {entry["id"] for entry in journal.doc["jobs"]}
        wanted = job_id.zfill(3) if job_id.isdigit() else job_id
        if wanted not in ids:
            raise InputError(
                f"session {journal.session_id} has no job {job_id!r}; jobs are 001 to "
                f"{max(ids)} (see --status {journal.session_id})"
            )
        chosen = [wanted]
    else:
        chosen = [e["id"] for e in journal.doc["jobs"] if e["status"] == "failed"]
        if not chosen:
            raise InputError(
                f"session {journal.session_id} has no failed jobs; retry one with --job ID"
            )
    for job in chosen:
        await journal.record(job, status="pending", output=None, error=None)
    return chosen
