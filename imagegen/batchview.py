"""A batch session's batches as the views show them (``--status``, the live display). Pure.

One line per batch (shard): its service name, its state, its jobs (how many still wait in it,
are done, failed), when it was created and when it was last polled, e.g.::

    shard 000 batches/7ab3… running: 5000 jobs, 5000 submitted · created 2026-07-01 14:30 ·
    last poll 15:02:11 (12 polls)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .model import BatchRecord, SessionState

#: Batches listed in full before the rest are summed up in one line.
SHOWN = 8


def _when(iso: str | None, *, date: bool) -> str:
    if not iso:
        return "-"
    day, _, clock = iso.partition("T")
    return f"{day} {clock[:5]}" if date else clock


def batch_line(record: BatchRecord, state: SessionState) -> str:
    """One batch, as the views show it."""
    statuses = Counter(state.jobs[j].status for j in record.job_ids if j in state.jobs)
    counts = [f"{len(record.job_ids)} jobs"]
    counts += [f"{n} {status}" for status, n in sorted(statuses.items()) if n]
    name = record.name or "(being created)"
    line = f"shard {record.shard:03d} {name} {record.state}: {', '.join(counts)}"
    if record.created:
        line += f" · created {_when(record.created, date=True)}"
    if record.last_poll:
        polls = f"{record.polls} poll{'s' if record.polls != 1 else ''}"
        line += f" · last poll {_when(record.last_poll, date=False)} ({polls})"
    if record.error and record.state == "abandoned":
        line += f" · {record.error}"
    return line


def batch_lines(state: SessionState) -> tuple[str, ...]:
    """Every batch of the session (the live ones first), at most :data:`SHOWN` in full."""
    records = sorted(
        state.batches.values(),
        key=lambda r: (r.state in ("collected", "abandoned"), r.shard),
    )
    lines = [batch_line(r, state) for r in records[:SHOWN]]
    if len(records) > SHOWN:
        rest = Counter(r.state for r in records[SHOWN:])
        summary = ", ".join(f"{n} {s}" for s, n in sorted(rest.items()))
        lines.append(f"… and {len(records) - SHOWN} more batches ({summary})")
    return tuple(lines)


def batch_rows(state: SessionState) -> list[dict[str, Any]]:
    """What ``--status --json`` lists per batch."""
    return [
        {
            "shard": r.shard,
            "name": r.name,
            "display_name": r.display_name,
            "state": r.state,
            "jobs": len(r.job_ids),
            "submitted": sum(
                1 for j in r.job_ids if j in state.jobs and state.jobs[j].status == "submitted"
            ),
            "created": r.created,
            "last_poll": r.last_poll,
            "polls": r.polls,
            "error": r.error,
        }
        for r in state.batches.values()
    ]
